#include "commands/tokenize.h"

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/progress.h"
#include "commands/tokenizer_source.h"
#include "common/error.h"
#include "common/line_reader.h"
#include "common/parallel.h"
#include "tokenizer/unicode.h"

namespace recmodel {

namespace {

struct TokenizeOptions {
  TokenizerSource source;
  std::string input = "-";
  bool pair = false;
  bool jsonl = false;
  bool no_special = false;
  bool ids_only = false;
  int max_length = -1;  // -1: the tokenizer's model_max_length; 0: no truncation
  std::string write_tokenizer;
};

struct Line {
  size_t number;
  std::string text;
  std::optional<std::string> pair;
};

// Lines are tokenized in blocks of this many bytes so all threads have work.
constexpr size_t kBlockBytes = 4 << 20;

Line parse_line(const TokenizeOptions& options, const std::string& name, size_t number, std::string raw) {
  Line line{number, {}, std::nullopt};
  if (options.jsonl) {
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(raw);
    } catch (const nlohmann::json::exception& e) {
      fail<DataError>("{}:{}: not a JSON object: {}", name, number, e.what());
    }
    if (!doc.is_object() || !doc.contains("text") || !doc["text"].is_string())
      fail<DataError>("{}:{}: expected an object with a string \"text\" (and optional \"pair\")", name, number);
    line.text = doc["text"].get<std::string>();
    if (doc.contains("pair") && !doc["pair"].is_null()) {
      if (!doc["pair"].is_string()) fail<DataError>("{}:{}: \"pair\" must be a string", name, number);
      line.pair = doc["pair"].get<std::string>();
    }
    return line;
  }
  if (size_t invalid = unicode::find_invalid_utf8(raw); invalid != std::string_view::npos)
    fail<DataError>("{}:{}: invalid UTF-8 at byte {}; re-encode the input as UTF-8", name, number, invalid + 1);
  if (options.pair) {
    size_t tab = raw.find('\t');
    if (tab == std::string::npos)
      fail<DataError>("{}:{}: --pair expects two texts separated by a TAB; found none", name, number);
    line.text = raw.substr(0, tab);
    line.pair = raw.substr(tab + 1);
  } else {
    line.text = std::move(raw);
  }
  return line;
}

void append_ints(std::string& out, const std::vector<int32_t>& values) {
  out += '[';
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    out += fmt::format_int(values[i]).c_str();
  }
  out += ']';
}

void format_encoding(std::string& out, const tokenizer::Encoding& encoding, bool with_types, bool ids_only) {
  out += "{\"ids\":";
  append_ints(out, encoding.ids);
  if (with_types) {
    out += ",\"type_ids\":";
    append_ints(out, encoding.type_ids);
  }
  if (!ids_only) {
    out += ",\"tokens\":[";
    for (size_t i = 0; i < encoding.tokens.size(); ++i) {
      if (i) out += ',';
      out += nlohmann::json(encoding.tokens[i]).dump();
    }
    out += ']';
  }
  if (encoding.truncated) out += fmt::format(",\"truncated\":{}", encoding.truncated);
  out += "}\n";
}

void run_tokenize(const TokenizeOptions& options, const Console& console) {
  tokenizer::BertTokenizer tokenizer = options.source.load(console.options().registry);
  if (!options.write_tokenizer.empty()) {
    tokenizer.save(options.write_tokenizer);
    console.result({{"written", options.write_tokenizer}, {"vocab_size", tokenizer.vocab().size()}},
                   [&](std::FILE* out) {
                     fmt::print(out, "wrote vocab.txt, tokenizer.json, tokenizer_config.json and "
                                     "special_tokens_map.json to {}\n", options.write_tokenizer);
                   });
    return;
  }
  if (options.pair && options.jsonl) fail<UsageError>("--pair and --jsonl both describe the input; choose one");
  size_t max_length = options.max_length < 0 ? tokenizer.config().model_max_length
                                             : static_cast<size_t>(options.max_length);
  const size_t specials = options.no_special ? 0 : (options.pair ? 3 : 2);
  if (max_length > 0 && max_length <= specials)
    fail<UsageError>("--max-length {} leaves no room for text after {} special tokens; use at least {}", max_length,
                     specials, specials + 1);

  LineReader reader(options.input);
  ProgressBar progress(console, "tokenize", reader.size_bytes(), "B");
  std::vector<Line> block;
  std::vector<std::string> rendered;
  std::string raw;
  const int threads = console.threads();
  auto flush = [&]() {
    rendered.assign(block.size(), std::string());
    // Contiguous slices per thread keep output order equal to input order.
    parallel_ranges(block.size(), threads, [&](size_t begin, size_t end) {
      for (size_t i = begin; i < end; ++i) {
        const Line& line = block[i];
        tokenizer::Encoding encoding =
            tokenizer.encode(line.text, line.pair ? std::optional<std::string_view>(*line.pair) : std::nullopt,
                             max_length, !options.no_special, !options.ids_only);
        format_encoding(rendered[i], encoding, line.pair.has_value(), options.ids_only);
      }
    });
    for (const auto& text : rendered) std::fwrite(text.data(), 1, text.size(), stdout);
    block.clear();
    progress.update(reader.bytes_read());
  };
  size_t block_bytes = 0;
  while (reader.next(raw)) {
    block_bytes += raw.size();
    block.push_back(parse_line(options, reader.name(), reader.line_number(), std::move(raw)));
    if (block_bytes >= kBlockBytes) {
      flush();
      block_bytes = 0;
    }
  }
  flush();
  progress.finish();
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) fail<DataError>("cannot write to stdout");
}

}  // namespace

CommandAction register_tokenize(CLI::App& command, const Console& console) {
  auto options = std::make_shared<TokenizeOptions>();
  command.footer(
      "\nOutput: one JSON object per input line, in input order: {\"ids\": [...], \"tokens\": [...]};\n"
      "pairs add \"type_ids\", truncated inputs \"truncated\" (tokens dropped).\n");
  options->source.add_options(command, "Tokenizer");
  const char* input_group = "Input";
  command.add_option("--input", options->input, "Text file, one input per line; - reads stdin")
      ->type_name("FILE")
      ->capture_default_str()
      ->group(input_group);
  command.add_flag("--pair", options->pair, "Each line is two texts separated by a TAB (query, title)")
      ->group(input_group);
  command.add_flag("--jsonl", options->jsonl,
                   "Each line is a JSON object {\"text\": ..., \"pair\": ...} (texts may hold newlines)")
      ->group(input_group);
  const char* output_group = "Encoding and output";
  command.add_flag("--no-special", options->no_special, "No [CLS]/[SEP] around the text")->group(output_group);
  command.add_option("--max-length", options->max_length,
                     "Truncate to this many tokens, longest-first for pairs; 0 = never; "
                     "default: the tokenizer's model_max_length (512)")
      ->default_str("auto")
      ->check(CLI::Range(0, 1 << 30).description(""))
      ->type_name("N")
      ->group(output_group);
  command.add_flag("--ids-only", options->ids_only, "Print only ids (and type_ids), no token strings")
      ->group(output_group);
  command.add_option("--write-tokenizer", options->write_tokenizer,
                     "Write vocab.txt, tokenizer.json, tokenizer_config.json and special_tokens_map.json "
                     "(Hugging Face layout) to DIR and exit")
      ->type_name("DIR")
      ->group(output_group);
  return [options, &console] { run_tokenize(*options, console); };
}

}  // namespace recmodel
