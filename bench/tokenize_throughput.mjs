// Times transformers.js tokenizing a corpus, one line at a time, single-threaded (JavaScript has one
// thread here), the way bench/tokenize_throughput.sh times recmodel: WordPiece ids without [CLS]/[SEP].
// Loading the tokenizer and reading the file are not timed; a short warm-up lets V8 compile the hot paths.
//
//   node bench/tokenize_throughput.mjs --model-dir DIR --corpus FILE
// prints one JSON line: {"seconds", "cpu_seconds", "bytes", "lines", "tokens", "version"}
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const peers = path.join(here, '..', 'tests', 'peers');
const { loadModelDir } = await import(path.join(peers, 'hf_bert.mjs'));

function arg(name) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) throw new Error(`${name} is required`);
  return process.argv[i + 1];
}

const tokenizer = await loadModelDir(arg('--model-dir'));
const raw = fs.readFileSync(arg('--corpus'));
const lines = raw.toString('utf8').split('\n');
if (lines.at(-1) === '') lines.pop();

for (let i = 0; i < Math.min(lines.length, 20000); ++i) tokenizer.encode(lines[i], { add_special_tokens: false });

let tokens = 0;
const cpuStart = process.cpuUsage();
const start = process.hrtime.bigint();
for (const line of lines) tokens += tokenizer.encode(line, { add_special_tokens: false }).length;
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
const cpu = process.cpuUsage(cpuStart);
const cpu_seconds = (cpu.user + cpu.system) / 1e6;

const { version } = JSON.parse(
  fs.readFileSync(path.join(peers, 'node_modules', '@huggingface', 'transformers', 'package.json'), 'utf8'),
);
console.log(JSON.stringify({ seconds, cpu_seconds, bytes: raw.length, lines: lines.length, tokens, version }));
