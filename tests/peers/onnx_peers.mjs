// ONNX Runtime and transformers.js on recmodel's ONNX exports, for tests/peers/onnx_*.test.sh and
// bench/onnx_throughput.sh. Subcommands:
//   ort FILE.onnx TOKENS.jsonl OUT.jsonl [--batch N] [--threads N]
//       runs ONNX Runtime on the token ids of `recmodel tokenize --jsonl` (one object per line with
//       "ids" and optional "type_ids"), in input order, BATCH inputs per run padded to the longest;
//       writes {"logits": [...]} per input.
//   pipeline DIR TEXTS.txt OUT.jsonl --dtype fp32|q8
//       transformers.js offline, pipeline('text-classification', DIR), one text per call (so an int8
//       model sees the same batch as `recmodel predict --batch-size 1`); writes {"label", "score"}.
//   bench FILE.onnx TOKENS.jsonl [--batch N] [--threads N] [--seconds S]
//       prints {"throughput": inputs/s at --batch, "latency_ms": {"p50", "p90"} at batch 1}.
import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';

function option(args, name, fallback) {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : fallback;
}

function readJsonl(file) {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line));
}

async function session(file, threads) {
  return ort.InferenceSession.create(file, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
}

// Returns the feeds of one padded batch of encodings.
function feeds(encodings) {
  const longest = Math.max(...encodings.map((e) => e.ids.length));
  const n = encodings.length * longest;
  const ids = new BigInt64Array(n), mask = new BigInt64Array(n), types = new BigInt64Array(n);
  encodings.forEach((e, row) => {
    e.ids.forEach((id, j) => {
      ids[row * longest + j] = BigInt(id);
      mask[row * longest + j] = 1n;
      types[row * longest + j] = BigInt(e.type_ids ? e.type_ids[j] : 0);
    });
  });
  const dims = [encodings.length, longest];
  return {
    input_ids: new ort.Tensor('int64', ids, dims),
    attention_mask: new ort.Tensor('int64', mask, dims),
    token_type_ids: new ort.Tensor('int64', types, dims),
  };
}

async function runOrt(args) {
  const [file, tokens, out] = args;
  const batch = Number(option(args, '--batch', '16'));
  const threads = Number(option(args, '--threads', '2'));
  const s = await session(file, threads);
  const encodings = readJsonl(tokens);
  const lines = [];
  for (let start = 0; start < encodings.length; start += batch) {
    const part = encodings.slice(start, start + batch);
    const result = await s.run(feeds(part));
    const logits = result.logits;
    const width = logits.dims[1];
    for (let row = 0; row < part.length; ++row)
      lines.push(JSON.stringify({ logits: Array.from(logits.data.slice(row * width, (row + 1) * width)) }));
  }
  fs.writeFileSync(out, lines.join('\n') + '\n');
}

async function runPipeline(args) {
  const [dir, textsFile, out] = args;
  const dtype = option(args, '--dtype', 'fp32');
  const { pipeline, env } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = path.dirname(path.resolve(dir)) + path.sep;
  const classify = await pipeline('text-classification', path.basename(path.resolve(dir)), {
    dtype,
    local_files_only: true,
  });
  const texts = fs.readFileSync(textsFile, 'utf8').split('\n').filter((t) => t.length > 0);
  const lines = [];
  for (const text of texts) {
    const [best] = await classify(text, { top_k: 1 });
    lines.push(JSON.stringify({ label: best.label, score: best.score }));
  }
  fs.writeFileSync(out, lines.join('\n') + '\n');
}

async function runBench(args) {
  const [file, tokens] = args;
  const batch = Number(option(args, '--batch', '32'));
  const threads = Number(option(args, '--threads', '2'));
  const seconds = Number(option(args, '--seconds', '5'));
  const s = await session(file, threads);
  const encodings = readJsonl(tokens);
  // Warm up, then as many batches as fit in the time budget.
  await s.run(feeds(encodings.slice(0, batch)));
  let done = 0, start = performance.now(), at = 0;
  while (performance.now() - start < seconds * 1000) {
    const part = [];
    for (let i = 0; i < batch; ++i) part.push(encodings[(at + i) % encodings.length]);
    at = (at + batch) % encodings.length;
    await s.run(feeds(part));
    done += batch;
  }
  const throughput = done / ((performance.now() - start) / 1000);
  const latencies = [];
  start = performance.now();
  for (let i = 0; performance.now() - start < seconds * 1000 || i < 20; ++i) {
    const t0 = performance.now();
    await s.run(feeds([encodings[i % encodings.length]]));
    latencies.push(performance.now() - t0);
  }
  latencies.sort((a, b) => a - b);
  const pick = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  console.log(JSON.stringify({ throughput, latency_ms: { p50: pick(0.5), p90: pick(0.9) }, runs: latencies.length }));
}

const [command, ...rest] = process.argv.slice(2);
const commands = { ort: runOrt, pipeline: runPipeline, bench: runBench };
if (!commands[command]) {
  console.error(`usage: node onnx_peers.mjs ort|pipeline|bench ...`);
  process.exit(2);
}
commands[command](rest).catch((e) => {
  console.error(`onnx_peers ${command}: ${e.stack || e.message}`);
  process.exit(1);
});
