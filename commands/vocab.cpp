#include "commands/vocab.h"

#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "cli/progress.h"
#include "common/error.h"
#include "common/files.h"
#include "common/text.h"
#include "tokenizer/vocab_builder.h"

namespace recmodel {

namespace {

// Checks everything that can be checked before reading the corpus, so a typo does not
// cost a counting pass.
void validate(const VocabOptions& options, size_t reserved) {
  size_t stdin_inputs = 0;
  for (const auto& input : options.inputs) {
    if (input == "-") {
      ++stdin_inputs;
      continue;
    }
    std::error_code ec;
    if (!fs::exists(input, ec)) fail<NotFoundError>("{}: no such file (--input)", input);
    if (fs::is_directory(input, ec))
      fail<DataError>("{}: is a directory; --input takes text files, one document per line", input);
  }
  if (stdin_inputs > 1) fail<UsageError>("--input - (stdin) can be given only once");
  // Checked before the corpus is read, and before any parent folder is made for it.
  const fs::path out(options.out);
  if (!out.has_filename() || out.filename() == "." || out.filename() == "..")
    fail<UsageError>("--out {}: names a directory; give the vocabulary file to write (e.g. {})",
                     quoted_for_message(options.out), quoted_for_message((out.parent_path() / "vocab.txt").string()));
  if (options.size <= reserved)
    fail<UsageError>("--size {} leaves no room beyond the {} special tokens and --unused slots; ask for more "
                     "(BERT's own vocabulary has 30522)",
                     options.size, reserved);
  std::error_code ec;
  if (fs::is_directory(options.out, ec))
    fail<UsageError>("{}: is a directory; --out names the vocab.txt file to write", options.out);
  if (fs::exists(options.out, ec) && !options.force)
    fail<UsageError>("{}: already exists; choose another --out or pass --force to replace it", options.out);
}

std::string join_paths(const std::vector<tokenizer::CorpusFileStats>& files) {
  std::string out;
  for (const auto& file : files) out += (out.empty() ? "" : ", ") + file.path;
  return out;
}

}  // namespace

void run_vocab(const VocabOptions& options, const Console& console) {
  tokenizer::TokenizerConfig config;
  config.do_lower_case = options.lowercase;  // accent stripping follows, as in BERT
  tokenizer::WordPieceTrainerOptions trainer_options;
  trainer_options.vocab_size = options.size;
  trainer_options.min_frequency = options.min_frequency;
  trainer_options.limit_alphabet = options.limit_alphabet;
  trainer_options.unused_tokens = options.unused;
  trainer_options.special_tokens = {config.pad_token, config.unk_token, config.cls_token, config.sep_token,
                                    config.mask_token};
  validate(options, trainer_options.special_tokens.size() + options.unused);

  tokenizer::WordCounter counter(config);
  std::vector<tokenizer::CorpusFileStats> files;
  for (const auto& input : options.inputs) {
    std::error_code ec;
    uint64_t total = input == "-" ? 0 : static_cast<uint64_t>(fs::file_size(input, ec));
    ProgressBar progress(console, "count words", ec ? 0 : total, "B");
    files.push_back(counter.add_file(input, console.threads(), [&](uint64_t bytes) { progress.update(bytes); }));
    progress.finish();
    const auto& stats = files.back();
    console.debug("{}: {} words on {} lines", stats.path, stats.words, stats.lines);
    if (stats.words == 0 && options.inputs.size() > 1) console.warn("{}: no words in it (empty or blank)", stats.path);
  }
  uint64_t lines = 0;
  for (const auto& file : files) lines += file.lines;
  if (counter.total_words() == 0)
    fail<DataError>("{}: no words to learn a vocabulary from ({} lines, all empty or whitespace); give a "
                    "text corpus with one document per line",
                    join_paths(files), lines);

  tokenizer::WordPieceTrainer trainer(counter.counts(), trainer_options);
  if (options.size < trainer.minimum_size())
    fail<UsageError>("--size {} is too small for this corpus: {} special tokens and --unused slots plus its {} "
                     "characters, each as word start and \"##\" continuation, need {}; raise --size or cap "
                     "the alphabet with --limit-alphabet N",
                     options.size, trainer.minimum_size() - 2 * trainer.alphabet_size(), trainer.alphabet_size(),
                     trainer.minimum_size());
  console.debug("{} distinct words, alphabet of {} characters; learning merges", counter.counts().size(),
                trainer.alphabet_size());
  tokenizer::TrainedVocab vocab = trainer.train();

  std::error_code ec;
  if (fs::exists(options.out, ec) && !options.force)
    fail<UsageError>("{}: appeared while working; not replacing it (pass --force to replace it)", options.out);
  fs::path out_path(options.out);
  if (out_path.has_parent_path()) {
    fs::create_directories(out_path.parent_path(), ec);
    if (ec) fail<DataError>("{}: cannot create directory: {}", out_path.parent_path().string(), ec.message());
  }
  write_file_atomic(out_path, tokenizer::vocab_file_contents(vocab.tokens));

  nlohmann::json corpus_files = nlohmann::json::array();
  for (const auto& file : files)
    corpus_files.push_back({{"path", file.path}, {"lines", file.lines}, {"words", file.words}});
  nlohmann::json document = {
      {"out", options.out},
      {"vocab_size", vocab.tokens.size()},
      {"target_size", options.size},
      {"reached_size", vocab.reached_size},
      {"special_tokens", vocab.special_tokens},
      {"alphabet", vocab.alphabet},
      {"learned", vocab.merges},
      {"lowercase", options.lowercase},
      {"min_frequency", options.min_frequency},
      {"corpus",
       {{"files", corpus_files},
        {"lines", lines},
        {"words", counter.total_words()},
        {"distinct_words", counter.counts().size()}}},
      {"left_out",
       {{"characters", vocab.dropped_characters},
        {"rare_character_words", vocab.rare_character_words},
        {"long_words", vocab.long_words}}},
  };
  console.result(document, [&](std::FILE* out) {
    fmt::print(out, "wrote {}: {} tokens ({} special, 2 x {} characters, {} learned subwords)\n", options.out,
               vocab.tokens.size(), vocab.special_tokens, vocab.alphabet, vocab.merges);
    fmt::print(out, "learned from {} words ({} distinct) on {} line{} of {} file{}\n", counter.total_words(),
               counter.counts().size(), lines, lines == 1 ? "" : "s", files.size(), files.size() == 1 ? "" : "s");
    if (!vocab.reached_size)
      fmt::print(out,
                 "stopped short of --size {}: no pair of pieces occurs --min-frequency {} times any more; "
                 "add text or lower --min-frequency\n",
                 options.size, std::max<uint64_t>(options.min_frequency, 1));
    if (vocab.dropped_characters > 0)
      fmt::print(out,
                 "left out {} characters (seen fewer than --min-frequency {} times{}); the {} distinct words "
                 "using them will tokenize as [UNK]\n",
                 vocab.dropped_characters, options.min_frequency,
                 options.limit_alphabet ? fmt::format(", or beyond --limit-alphabet {}", options.limit_alphabet) : "",
                 vocab.rare_character_words);
    if (!options.lowercase)
      fmt::print(out, "cased vocabulary: tokenize with 'recmodel tokenize --vocab {} --cased'\n", options.out);
  });
}

CommandAction register_vocab(CLI::App& command, const Console& console) {
  auto options = std::make_shared<VocabOptions>();
  command.footer(
      "\nLearns vocab.txt as Hugging Face's WordPieceTrainer does: special tokens, every character as word\n"
      "start and \"##\" continuation, then the most frequent subwords (BPE merges) up to --size tokens.\n");
  const char* input_group = "Corpus";
  command.add_option("--input", options->inputs, "Text file, one document per line (repeatable); - reads stdin")
      ->type_name("FILE")
      ->required()
      ->group(input_group);
  command.add_flag("--lowercase", options->lowercase,
                   "Lower-case and strip accents before learning (an uncased vocabulary); default: cased")
      ->group(input_group);
  const char* vocab_group = "Vocabulary";
  command.add_option("--size", options->size, "Number of tokens to reach, special tokens included")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1} << 24))
      ->group(vocab_group);
  command.add_option("--min-frequency", options->min_frequency,
                     "Leave out characters seen fewer times and stop when no pair occurs this often; "
                     "0 or 1 = keep everything")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{0}, uint64_t{1} << 40))
      ->group(vocab_group);
  command.add_option("--limit-alphabet", options->limit_alphabet,
                     "Keep only the N most frequent characters; 0 = no limit")
      ->capture_default_str()
      ->check(CLI::Range(size_t{0}, size_t{1} << 24))
      ->group(vocab_group);
  command.add_option("--unused", options->unused,
                     "Reserve N [unusedK] tokens after the special ones, for tokens added later")
      ->capture_default_str()
      ->check(CLI::Range(size_t{0}, size_t{1} << 20))
      ->group(vocab_group);
  const char* output_group = "Output";
  command.add_option("--out", options->out, "The vocab.txt to write (one token per line)")
      ->type_name("FILE")
      ->required()
      ->group(output_group);
  command.add_flag("--force", options->force, "Replace --out if it exists")->group(output_group);
  return [options, &console] { run_vocab(*options, console); };
}

}  // namespace recmodel
