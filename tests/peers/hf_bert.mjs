// transformers.js BERT tokenizers for recmodel's parity test and benchmarks: one loaded from a model
// directory as a user would load it, one built from vocab.txt in Hugging Face's published layout.
import fs from 'node:fs';
import path from 'node:path';
import { AutoTokenizer, BertTokenizer, env } from '@huggingface/transformers';

// Returns the tokenizer.json and tokenizer_config.json Hugging Face publishes for a BERT vocabulary.
export function referenceFiles(vocabFile, lowercase) {
  const tokens = fs.readFileSync(vocabFile, 'utf8').split('\n');
  if (tokens.at(-1) === '') tokens.pop();
  const vocab = Object.create(null);
  tokens.forEach((token, id) => {
    vocab[token] = id; // a repeated token keeps its last id, as Hugging Face's loaders do
  });
  const specials = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
  const added_tokens = specials
    .filter((t) => t in vocab)
    .map((t) => ({
      id: vocab[t],
      content: t,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    }))
    .sort((a, b) => a.id - b.id);
  const special = (t, type_id) => ({ SpecialToken: { id: t, type_id } });
  const sequence = (id, type_id) => ({ Sequence: { id, type_id } });
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens,
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [special('[CLS]', 0), sequence('A', 0), special('[SEP]', 0)],
      pair: [special('[CLS]', 0), sequence('A', 0), special('[SEP]', 0), sequence('B', 1), special('[SEP]', 1)],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [vocab['[CLS]']], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [vocab['[SEP]']], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab,
    },
  };
  const config = {
    do_lower_case: lowercase,
    model_max_length: 512,
    tokenizer_class: 'BertTokenizer',
    unk_token: '[UNK]',
    sep_token: '[SEP]',
    pad_token: '[PAD]',
    cls_token: '[CLS]',
    mask_token: '[MASK]',
    tokenize_chinese_chars: true,
    strip_accents: null,
    clean_up_tokenization_spaces: true,
  };
  return { tokenizerJson, config };
}

// Builds a transformers.js BertTokenizer from vocab.txt in Hugging Face's layout.
export function referenceTokenizer(vocabFile, lowercase) {
  const { tokenizerJson, config } = referenceFiles(vocabFile, lowercase);
  return new BertTokenizer(tokenizerJson, config);
}

// Loads tokenizer.json + tokenizer_config.json from `dir` offline with AutoTokenizer.
export async function loadModelDir(dir) {
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.useFSCache = false;
  env.localModelPath = path.dirname(path.resolve(dir)) + path.sep;
  return AutoTokenizer.from_pretrained(path.basename(path.resolve(dir)), { local_files_only: true });
}

// Where transformers.js (tokenizers.js 0.2) departs from Hugging Face's tokenizers (Rust), which is
// what BertTokenizerFast, and so every fine-tuned BERT, uses. Each rewrite turns an input into one on
// which transformers.js computes the Rust ids, and is applied only where it changes the text:
// - lower-casing: JavaScript's toLowerCase maps a word-final 'Σ' to 'ς'; Rust lower-cases character
//   by character, always to 'σ' (normalizer.rs, NormalizedString::lowercase).
// - CJK outside the BMP (U+20000..U+2FA1F): transformers.js walks UTF-16 code units, so it never sees
//   these ideographs and leaves them glued to their neighbours; Rust puts spaces around them
//   (normalizers/bert.rs, do_handle_chinese_chars).
const SUPPLEMENTARY_CJK = /([\u{20000}-\u{2A6DF}\u{2A700}-\u{2B73F}\u{2B740}-\u{2B81F}\u{2B820}-\u{2CEAF}\u{2F800}-\u{2FA1F}])/gu;

// Returns [text transformers.js should see, names of the rewrites applied].
export function rustEquivalent(text, lowercase) {
  const applied = [];
  let out = text;
  if (lowercase && out.includes('\u03a3')) {
    out = out.replaceAll('\u03a3', '\u03c3');
    applied.push('final-sigma');
  }
  const spaced = out.replace(SUPPLEMENTARY_CJK, ' $1 ');
  if (spaced !== out) {
    out = spaced;
    applied.push('supplementary-cjk');
  }
  return [out, applied];
}
