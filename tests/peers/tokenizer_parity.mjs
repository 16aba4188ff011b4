// Compares recmodel's token ids with transformers.js on the same inputs (see tokenizer_parity.test.sh).
//
//   node tokenizer_parity.mjs --model-dir DIR --vocab vocab.txt [--lowercase] --inputs inputs.jsonl \
//        --case LABEL:MAXLEN:recmodel-output.jsonl [--case ...] [--show 10] [--raw]
//
// DIR is what `recmodel tokenize --write-tokenizer DIR` wrote; transformers.js loads it offline the way
// a user would (AutoTokenizer.from_pretrained). A second tokenizer is built here from vocab.txt with
// the exact tokenizer.json layout Hugging Face publishes for BERT, so a wrong tokenizer.json written by
// recmodel is caught even when recmodel's own ids agree with it.
//
// Truncation: transformers.js only cuts the finished id list at max_length (dropping the final [SEP]),
// which is not what Hugging Face's tokenizers do. The expected ids for a max length are therefore the
// transformers.js ids of each sequence without special tokens, truncated with the "longest_first"
// rule of Hugging Face tokenizers (tokenizers/src/utils/truncation.rs), then framed by [CLS]/[SEP];
// when nothing needs cutting that equals transformers.js's own full encoding, which is checked too.
//
// transformers.js departs from Hugging Face's Rust tokenizers on two inputs (a word-final capital sigma
// when lower-casing, CJK ideographs outside the BMP); hf_bert.mjs's rustEquivalent rewrites those
// inputs so transformers.js computes the Rust ids, and the report counts them. --raw turns that off.
//
// Exits 1 when any id (or token type) differs, printing the first cases of each kind.
import fs from 'node:fs';
import { loadModelDir, referenceTokenizer, rustEquivalent } from './hf_bert.mjs';

function parseArgs(argv) {
  const args = { cases: [], show: 10, lowercase: false, raw: false };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--model-dir') args.modelDir = value();
    else if (a === '--vocab') args.vocab = value();
    else if (a === '--lowercase') args.lowercase = true;
    else if (a === '--raw') args.raw = true;
    else if (a === '--inputs') args.inputs = value();
    else if (a === '--show') args.show = Number(value());
    else if (a === '--case') {
      const [label, maxLength, ...file] = value().split(':');
      args.cases.push({ label, maxLength: Number(maxLength), file: file.join(':') });
    } else throw new Error(`unknown argument ${a}`);
  }
  for (const required of ['modelDir', 'vocab', 'inputs']) {
    if (!args[required]) throw new Error(`--${required.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} is required`);
  }
  return args;
}

function readJsonl(file) {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line, i) => {
      try {
        return JSON.parse(line);
      } catch (e) {
        throw new Error(`${file}:${i + 1}: not JSON (${e.message}): ${line.slice(0, 200)}`);
      }
    });
}

function idsOf(tokenizer, text, options) {
  return tokenizer(text, { ...options, return_tensor: false });
}

// Encodes one input without truncation: the two sequences alone, and transformers.js's framing.
function encodeParts(tokenizer, input) {
  const text = input.text;
  const pair = input.pair ?? null;
  const a = idsOf(tokenizer, text, { add_special_tokens: false }).input_ids;
  const b = pair === null ? null : idsOf(tokenizer, pair, { add_special_tokens: false }).input_ids;
  const full = idsOf(tokenizer, text, { text_pair: pair, return_token_type_ids: true });
  return { a, b, full };
}

// Returns the input transformers.js should see to compute Hugging Face's (Rust) ids, and the
// rewrites that took.
function equivalentInput(input, lowercase, raw) {
  if (raw) return [input, []];
  const [text, applied] = rustEquivalent(input.text, lowercase);
  const out = { text };
  if ('pair' in input) {
    const [pair, appliedPair] = rustEquivalent(input.pair, lowercase);
    out.pair = pair;
    applied.push(...appliedPair.filter((x) => !applied.includes(x)));
  }
  return [out, applied];
}

// Frames (a, b) as [CLS] a [SEP] (b [SEP]) with token types, after longest-first truncation.
function frame(tokenizer, { a, b }, maxLength) {
  const cls = tokenizer.convert_tokens_to_ids('[CLS]');
  const sep = tokenizer.convert_tokens_to_ids('[SEP]');
  let n1 = a.length;
  let n2 = b === null ? 0 : b.length;
  if (maxLength > 0) {
    const budget = Math.max(0, maxLength - (b === null ? 2 : 3));
    if (b === null) {
      n1 = Math.min(n1, budget);
    } else if (n1 + n2 > budget) {
      // tokenizers' LongestFirst: with s = the shorter and l = the longer length, keep s and cut l to
      // max(s, budget - s); if that still overflows, keep budget/2 of the shorter-or-first side and
      // the rest (one more on odd budgets) of the other.
      let short = Math.min(n1, n2);
      let long;
      const swap = n1 > n2;
      long = short > budget ? short : Math.max(short, budget - short);
      if (short + long > budget) {
        short = Math.floor(budget / 2);
        long = short + (budget % 2);
      }
      [n1, n2] = swap ? [long, short] : [short, long];
      n1 = Math.min(n1, a.length);
      n2 = Math.min(n2, b.length);
    }
  }
  const ids = [cls, ...a.slice(0, n1), sep];
  const types = new Array(ids.length).fill(0);
  if (b !== null) {
    const tail = [...b.slice(0, n2), sep];
    ids.push(...tail);
    types.push(...new Array(tail.length).fill(1));
  }
  return { ids, types };
}

// Returns the input as JSON, cut to a readable length.
function shown(input) {
  const json = JSON.stringify(input);
  return json.length <= 400 ? json : `${json.slice(0, 400)}… (${json.length} characters)`;
}

const same = (x, y) => x.length === y.length && x.every((v, i) => v === y[i]);

function describe(tokenizer, ids) {
  return ids.map((id) => tokenizer._tokenizer.id_to_token(id) ?? `<${id}>`).join(' ');
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const inputs = readJsonl(args.inputs);
  const written = await loadModelDir(args.modelDir);
  const reference = referenceTokenizer(args.vocab, args.lowercase);
  let failures = 0;
  const report = (title, list) => {
    if (list.length === 0) return;
    failures += list.length;
    console.log(`MISMATCH ${title}: ${list.length} of ${inputs.length} inputs; the first ${Math.min(args.show, list.length)}:`);
    for (const m of list.slice(0, args.show)) console.log(m);
  };

  // 1. The tokenizer.json recmodel wrote behaves like Hugging Face's own layout.
  const parts = [];
  const layoutMismatches = [];
  const framingMismatches = [];
  const rewritten = new Map();
  inputs.forEach((input, i) => {
    const [seen, applied] = equivalentInput(input, args.lowercase, args.raw);
    for (const name of applied) rewritten.set(name, (rewritten.get(name) ?? 0) + 1);
    const ours = encodeParts(written, seen);
    const theirs = encodeParts(reference, seen);
    parts.push(ours);
    if (!same(ours.full.input_ids, theirs.full.input_ids)) {
      layoutMismatches.push(
        `  #${i + 1} input=${shown(input)}\n` +
          `    with recmodel's tokenizer.json: ${JSON.stringify(ours.full.input_ids)}\n` +
          `    with Hugging Face's layout:     ${JSON.stringify(theirs.full.input_ids)}`,
      );
    }
    const framed = frame(written, ours, 0);
    if (!same(framed.ids, ours.full.input_ids) || !same(framed.types, ours.full.token_type_ids ?? [])) {
      framingMismatches.push(`  #${i + 1} input=${shown(input)}: transformers.js framing differs from [CLS] a [SEP] b [SEP]`);
    }
  });
  for (const [name, count] of rewritten) {
    console.log(`note: ${count} inputs rewritten for transformers.js's known departure from Hugging Face tokenizers: ${name}`);
  }
  report("transformers.js with recmodel's tokenizer.json vs Hugging Face's tokenizer.json layout", layoutMismatches);
  report('transformers.js pair framing (test harness assumption)', framingMismatches);

  // 2. recmodel's ids equal transformers.js's for every case.
  for (const c of args.cases) {
    const actual = readJsonl(c.file);
    const mismatches = [];
    if (actual.length !== inputs.length) {
      mismatches.push(`  recmodel printed ${actual.length} lines for ${inputs.length} inputs (${c.file})`);
    }
    const n = Math.min(actual.length, inputs.length);
    for (let i = 0; i < n; ++i) {
      const expected = frame(written, parts[i], c.maxLength);
      const got = actual[i];
      const idsOk = Array.isArray(got.ids) && same(got.ids, expected.ids);
      // recmodel prints type_ids for pairs only; a single text's are all 0.
      const typesOk =
        'type_ids' in got ? Array.isArray(got.type_ids) && same(got.type_ids, expected.types)
          : !('pair' in inputs[i]);
      if (!idsOk || !typesOk) {
        mismatches.push(
          `  #${i + 1} input=${shown(inputs[i])}\n` +
            `    recmodel:        ids=${JSON.stringify(got.ids)}${typesOk ? '' : ` type_ids=${JSON.stringify(got.type_ids)}`}\n` +
            `    transformers.js: ids=${JSON.stringify(expected.ids)}${typesOk ? '' : ` type_ids=${JSON.stringify(expected.types)}`}\n` +
            `    recmodel tokens:        ${describe(written, got.ids ?? [])}\n` +
            `    transformers.js tokens: ${describe(written, expected.ids)}`,
        );
      }
    }
    report(`${c.label} max_length=${c.maxLength} (recmodel vs transformers.js)`, mismatches);
    if (mismatches.length === 0) {
      console.log(`ok ${c.label} max_length=${c.maxLength}: ${inputs.length} inputs, ids and token types identical`);
    }
  }
  process.exit(failures > 0 ? 1 : 0);
}

main().catch((e) => {
  console.error(`tokenizer_parity.mjs: ${e.stack ?? e}`);
  process.exit(2);
});
