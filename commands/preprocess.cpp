#include "commands/preprocess.h"

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/progress.h"
#include "cli/suggest.h"
#include "commands/tokenizer_source.h"
#include "common/error.h"
#include "common/text.h"
#include "data/labels.h"
#include "data/preprocess.h"

namespace recmodel {

namespace {

// Per-label columns in the summary table up to this many labels; beyond, just the names.
constexpr size_t kLabelColumns = 6;
constexpr size_t kLabelColumnBytes = 40;  // of a label shown in the summary

// The command line as typed; run_preprocess turns it into a data::PreprocessConfig. Defaults
// come from PreprocessConfig so --help, the manifest and the library agree.
struct PreprocessOptions {
  std::vector<std::string> inputs, train, dev, test;
  std::string out;
  bool force = false;
  TokenizerSource source;
  std::string text_column = data::PreprocessConfig().text_column;
  std::string pair_column;
  std::string label_column = data::PreprocessConfig().label_column;
  std::string group_column;
  std::string task = data::task_name(data::PreprocessConfig().task);
  std::string labels;
  std::string format = "auto";
  size_t max_length = data::PreprocessConfig().max_length;
  std::string split = data::SplitRatios().text();
  uint64_t seed = data::PreprocessConfig().seed;
  std::string max_rejected = data::PreprocessConfig().max_rejected.text();
  std::string duplicates = data::duplicate_policy_name(data::PreprocessConfig().policy.duplicates);
  std::string conflicts = data::conflict_policy_name(data::PreprocessConfig().policy.conflicts);
  bool drop_test_overlap = data::PreprocessConfig().policy.drop_test_overlap;
  const CLI::Option* split_option = nullptr;
};

data::Format input_format(const PreprocessOptions& options, const std::string& path) {
  if (options.format != "auto") return data::parse_format(options.format);
  auto format = data::format_from_extension(path);
  if (!format)
    fail<UsageError>("{}: cannot tell the format from the file name; pass --format csv, tsv or jsonl", path);
  return *format;
}

data::PreprocessConfig make_config(const PreprocessOptions& options, const Console& console) {
  data::PreprocessConfig config;
  const bool given = !options.train.empty() || !options.dev.empty() || !options.test.empty();
  if (given && !options.inputs.empty())
    fail<UsageError>("--input splits by --split; --train/--dev/--test are splits already made. Use one or the other");
  if (given && options.split_option && options.split_option->count() > 0)
    fail<UsageError>("--split does not apply to given --train/--dev/--test files, which are kept as they are");
  for (const auto& path : options.inputs) config.inputs.push_back({path, input_format(options, path), -1});
  const std::vector<std::string>* given_files[] = {&options.train, &options.dev, &options.test};
  for (int split = 0; split < data::kSplitCount; ++split)
    for (const auto& path : *given_files[split]) config.inputs.push_back({path, input_format(options, path), split});

  config.out = options.out;
  config.force = options.force;
  config.text_column = options.text_column;
  config.pair_column = options.pair_column;
  config.label_column = options.label_column;
  config.group_column = options.group_column;
  config.task = data::parse_task(options.task);
  if (!options.labels.empty()) config.labels = data::parse_label_list(options.labels);
  config.max_length = options.max_length;
  if (!given) config.ratios = data::SplitRatios::parse(options.split);
  config.seed = options.seed;
  config.max_rejected = data::RejectLimit::parse(options.max_rejected);
  config.policy.duplicates = data::parse_duplicate_policy(options.duplicates);
  config.policy.conflicts = data::parse_conflict_policy(options.conflicts);
  config.policy.drop_test_overlap = options.drop_test_overlap;
  config.threads = console.threads();
  config.tokenizer_source = options.source.model.empty() ? fmt::format("--vocab {}{}", options.source.vocab,
                                                                       options.source.cased ? " --cased" : "")
                                                         : fmt::format("--model {}", options.source.model);
  data::validate_config(config);
  return config;
}

// Returns `n` with thousands separators: 3532 → "3,532".
std::string grouped(uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

void print_summary(std::FILE* out, const nlohmann::ordered_json& m, const std::string& dir) {
  const auto& counts = m["counts"];
  const auto& policies = m["policies"];
  const bool classification = m["task"] == "classification";
  std::vector<std::string> labels;
  if (classification) labels = m["labels"].get<std::vector<std::string>>();
  fmt::print(out, "Wrote {} ({}{})\n\n", dir, m["task"].get<std::string>(),
             classification ? fmt::format(", {} label{}", labels.size(), labels.size() == 1 ? "" : "s") : "");
  fmt::print(out, "  rows read   {:>9}\n", counts["rows_read"].get<uint64_t>());
  fmt::print(out, "  kept        {:>9}\n", counts["kept"].get<uint64_t>());

  const auto& duplicates = policies["duplicates"];
  const bool keep_duplicates = duplicates["policy"] == "keep";
  const uint64_t duplicate_rows = duplicates[keep_duplicates ? "kept" : "dropped"].get<uint64_t>();
  fmt::print(out, "  duplicates  {:>9}{}\n", duplicate_rows,
             duplicate_rows == 0 ? "" : keep_duplicates ? " kept (--duplicates keep)" : " dropped");

  const auto& conflicts = policies["conflicts"];
  const std::string conflict_policy = conflicts["policy"].get<std::string>();
  const uint64_t texts = conflicts["texts"].get<uint64_t>();
  const uint64_t conflict_rows = conflicts[conflict_policy == "keep" ? "kept" : "rejected"].get<uint64_t>();
  std::string conflict_note;
  if (texts > 0) {
    const std::string in_texts = fmt::format("{} text{}", texts, texts == 1 ? "" : "s");
    if (conflict_policy == "keep") conflict_note = fmt::format(" kept, in {} (--conflicts keep)", in_texts);
    else if (conflict_policy == "reject") conflict_note = fmt::format(" rejected, in {}", in_texts);
    else
      conflict_note = fmt::format(" rejected; {} of {} resolved by majority (--conflicts majority)",
                                  conflicts["resolved_texts"].get<uint64_t>(), in_texts);
  }
  fmt::print(out, "  conflicts   {:>9}{}\n", conflict_rows, conflict_note);
  fmt::print(out, "  rejected    {:>9}\n", counts["rejected"].get<uint64_t>());
  if (policies.contains("test_overlap")) {
    const auto& overlap = policies["test_overlap"];
    const uint64_t in_train = overlap["in_train"].get<uint64_t>();
    std::string what = in_train == 0                ? ""
                       : overlap["policy"] == "drop" ? "; dropped (--drop-test-overlap)"
                                                     : "; kept (--drop-test-overlap drops them)";
    fmt::print(out, "  test overlap: {} of {} test rows also appear in train{}\n", grouped(in_train),
               grouped(overlap["test_rows"].get<uint64_t>()), what);
  }
  fmt::print(out, "\n");

  // Labels come from the data: shown with printable(), so none can drive the terminal.
  const bool label_columns = classification && labels.size() <= kLabelColumns;
  size_t width = 8;
  if (label_columns)
    for (const auto& label : labels) width = std::max(width, printable(label, kLabelColumnBytes).size());
  std::string header = fmt::format("  {:<6} {:>9}", "split", "examples");
  if (label_columns)
    for (const auto& label : labels) header += fmt::format(" {:>{}}", printable(label, kLabelColumnBytes), width);
  if (!classification) header += fmt::format(" {:>12}", "mean target");
  fmt::print(out, "{}\n", header);
  for (const char* name : {"train", "dev", "test"}) {
    const auto& split = m["splits"][name];
    std::string line = fmt::format("  {:<6} {:>9}", name, split["examples"].get<uint64_t>());
    if (label_columns)
      for (const auto& label : labels) line += fmt::format(" {:>{}}", split["labels"][label].get<uint64_t>(), width);
    if (!classification)
      line += split.contains("targets") ? fmt::format(" {:>12.4g}", split["targets"]["mean"].get<double>())
                                        : fmt::format(" {:>12}", "-");
    fmt::print(out, "{}\n", line);
  }
  if (classification && !label_columns) {
    std::string names;
    for (size_t i = 0; i < labels.size() && i < 20; ++i) names += (i ? ", " : "") + printable(labels[i], kLabelColumnBytes);
    if (labels.size() > 20) names += ", ...";
    fmt::print(out, "  labels: {}\n", names);
  }
  const auto& lengths = m["token_lengths"];
  fmt::print(out, "\n  tokens per example: p50 {}, p95 {}, max {}; {:.1f}% truncated to {}\n",
             lengths["p50"].get<uint64_t>(), lengths["p95"].get<uint64_t>(), lengths["max"].get<uint64_t>(),
             m["truncation_rate"].get<double>() * 100, m["max_length"].get<uint64_t>());
  uint64_t not_used = counts["rejected"].get<uint64_t>() + counts["duplicates_removed"].get<uint64_t>();
  if (policies.contains("test_overlap")) not_used += policies["test_overlap"]["dropped"].get<uint64_t>();
  if (not_used > 0) fmt::print(out, "  rows not used are listed in {}/rejected.jsonl\n", dir);
}

void run_preprocess(const PreprocessOptions& options, const Console& console) {
  data::PreprocessConfig config = make_config(options, console);
  tokenizer::BertTokenizer tokenizer = options.source.load(console.options().registry);

  uint64_t total = 0;
  for (const auto& input : config.inputs) {
    std::error_code ec;
    total += std::filesystem::file_size(input.path, ec);
  }
  ProgressBar progress(console, "preprocess", total, "B");
  data::PreprocessResult result =
      data::preprocess(config, tokenizer, [&](uint64_t done, uint64_t) { progress.update(done); });
  progress.finish();
  for (const auto& warning : result.warnings) console.warn("{}", warning);

  nlohmann::json document = nlohmann::json::parse(result.manifest.dump());
  document["out"] = options.out;
  console.result(document, [&](std::FILE* out) { print_summary(out, result.manifest, options.out); });
}

}  // namespace

CommandAction register_preprocess(CLI::App& command, const Console& console) {
  auto options = std::make_shared<PreprocessOptions>();
  command.footer(
      "\nOutput directory: manifest.json, train.bin, dev.bin, test.bin (token ids, memory-mapped by train),\n"
      "rejected.jsonl (every row not used, with file, line and reason) and tokenizer/.\n"
      "Labels get ids in sorted order (numeric when all labels are integers) unless --labels fixes them.");

  const char* input_group = "Input";
  command.add_option("--input", options->inputs, "Data file to split by --split (repeatable): .csv, .tsv, .jsonl")
      ->type_name("FILE")
      ->default_str("")
      ->allow_extra_args(false)
      ->group(input_group);
  command.add_option("--train", options->train, "Given train split file (instead of --input)")
      ->type_name("FILE")
      ->default_str("")
      ->allow_extra_args(false)
      ->group(input_group);
  command.add_option("--dev", options->dev, "Given dev split file")
      ->type_name("FILE")
      ->default_str("")
      ->allow_extra_args(false)
      ->group(input_group);
  command.add_option("--test", options->test, "Given test split file")
      ->type_name("FILE")
      ->default_str("")
      ->allow_extra_args(false)
      ->group(input_group);
  command.add_option("--format", options->format, "Input format; auto = from the file extension")
      ->check(one_of({"auto", "csv", "tsv", "jsonl"}))
      ->group(input_group);

  const char* columns_group = "Columns and task";
  command.add_option("--text-column", options->text_column, "Column holding the text")->group(columns_group);
  command.add_option("--text-pair-column", options->pair_column,
                     "Column holding the second text of a pair (e.g. the product title for a query)")
      ->group(columns_group);
  command.add_option("--label-column", options->label_column, "Column holding the label or target")
      ->group(columns_group);
  command.add_option("--task", options->task, "classification (labels) or regression (numeric target)")
      ->check(one_of({"classification", "regression"}))
      ->group(columns_group);
  command.add_option("--labels", options->labels,
                     "Fix the labels and their id order, e.g. neg,neu,pos; other labels are rejected rows")
      ->type_name("LIST")
      ->group(columns_group);

  options->source.add_options(command, "Tokenizer");
  command.add_option("--max-length", options->max_length, "Tokens per example, [CLS]/[SEP] included; longer "
                                                          "texts are truncated (longest first for pairs)")
      ->check(CLI::Range(size_t{3}, size_t{1} << 20).description(""))
      ->type_name("N")
      ->group("Tokenizer");

  const char* split_group = "Split";
  options->split_option =
      command.add_option("--split", options->split, "train,dev,test shares summing to 1 (or train,dev)")
          ->type_name("RATIOS")
          ->group(split_group);
  command.add_option("--seed", options->seed, "Seed of the split; the same seed and input give the same split")
      ->check(whole_number())
      ->type_name("N")
      ->group(split_group);
  command.add_option("--group-column", options->group_column,
                     "Keep all rows with the same value here in one split (e.g. query or product id)")
      ->group(split_group);

  const char* output_group = "Output and quality";
  command.add_option("--out", options->out, "Output directory (created; see --force)")
      ->type_name("DIR")
      ->required()
      ->group(output_group);
  command.add_flag("--force", options->force, "Replace an existing output directory")->group(output_group);
  command.add_option("--max-rejected", options->max_rejected,
                     "Unusable rows tolerated: a count, or a percentage of the rows read (2.5%); "
                     "more fails with exit 3 and writes nothing")
      ->type_name("N|P%")
      ->group(output_group);

  const char* policy_group = "Duplicates and conflicts";
  command.add_option("--duplicates", options->duplicates,
                     "Rows repeating an earlier row's text and label: drop them (catalogs), or keep them all, as "
                     "the traffic's frequency (ratings, query logs, clicks)")
      ->check(one_of({"drop", "keep"}))
      ->group(policy_group);
  command.add_option("--conflicts", options->conflicts,
                     "Rows with the same text and another label: reject them (the first row is kept), keep every "
                     "label, or keep the most frequent label only (majority; a tie rejects the text)")
      ->check(one_of({"reject", "keep", "majority"}))
      ->group(policy_group);
  command.add_flag("--drop-test-overlap", options->drop_test_overlap,
                   "Drop the rows of a given --test split whose text is in train; by default the test split is "
                   "kept whole and the overlap reported")
      ->group(policy_group);

  return [options, &console] { run_preprocess(*options, console); };
}

}  // namespace recmodel
