#include "commands/tokenize.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "cli/progress.h"
#include "commands/tokenizer_source.h"
#include "common/error.h"
#include "common/json.h"
#include "common/line_reader.h"
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

// A line's texts: views into the block being tokenized, or, for JSONL, into the decoded storage_*.
struct Line {
  std::string_view text;
  std::optional<std::string_view> pair;
  std::string storage_text, storage_pair;
};

// Input is read in blocks of whole lines of about this many bytes; all threads split, parse,
// tokenize and format a block's lines, so the only serial work is one read and one write per block.
constexpr size_t kBlockBytes = 4 << 20;

// Fills `line` from one input line; returns what is wrong with it, or "" when it is usable.
std::string parse_line(const TokenizeOptions& options, std::string_view raw, Line& line) {
  line.pair.reset();
  if (options.jsonl) {
    std::string why;
    nlohmann::json doc = try_parse_json(raw, why);
    if (!why.empty()) return why;
    if (!doc.is_object() || !doc.contains("text") || !doc["text"].is_string())
      return "expected an object with a string \"text\" (and optional \"pair\")";
    line.storage_text = doc["text"].get<std::string>();
    line.text = line.storage_text;
    if (doc.contains("pair") && !doc["pair"].is_null()) {
      if (!doc["pair"].is_string()) return "\"pair\" must be a string";
      line.storage_pair = doc["pair"].get<std::string>();
      line.pair = line.storage_pair;
    }
    return {};
  }
  if (size_t invalid = unicode::find_invalid_utf8(raw); invalid != std::string_view::npos)
    return fmt::format("invalid UTF-8 at byte {}; re-encode the input as UTF-8", invalid + 1);
  if (options.pair) {
    size_t tab = raw.find('\t');
    if (tab == std::string::npos) return "--pair expects two texts separated by a TAB; found none";
    line.text = raw.substr(0, tab);
    line.pair = raw.substr(tab + 1);
  } else {
    line.text = raw;
  }
  return {};
}

void append_ints(std::string& out, const std::vector<int32_t>& values) {
  out += '[';
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    const fmt::format_int digits(values[i]);
    out.append(digits.data(), digits.size());
  }
  out += ']';
}

// Appends `text` (valid UTF-8) as a JSON string, escaped as nlohmann::json::dump escapes it.
void append_json_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (byte < 0x20) {
          out += "\\u00";
          out += kHex[byte >> 4];
          out += kHex[byte & 15];
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

void format_encoding(std::string& out, const tokenizer::Encoding& encoding, const tokenizer::Vocab& vocab,
                     bool with_types, bool ids_only) {
  out += "{\"ids\":";
  append_ints(out, encoding.ids);
  if (with_types) {
    out += ",\"type_ids\":";
    append_ints(out, encoding.type_ids);
  }
  if (!ids_only) {
    out += ",\"tokens\":[";
    for (size_t i = 0; i < encoding.ids.size(); ++i) {
      if (i) out += ',';
      append_json_string(out, vocab.token(encoding.ids[i]));
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
  const size_t threads = static_cast<size_t>(std::max(console.threads(), 1));
  // Each block is cut into more slices than threads, taken in order from a counter, so a thread
  // that drew cheap lines takes another slice instead of waiting; the main thread meanwhile reads
  // the next block. Slices are written in order, so output order is input order.
  const size_t slices_per_block = threads == 1 ? 1 : threads * 8;
  std::string_view block, next_block;
  std::vector<std::string> rendered(slices_per_block);
  std::vector<size_t> slice_lines(slices_per_block);
  std::vector<std::exception_ptr> errors(slices_per_block);
  size_t lines_before = 0;

  // The first line that starts at or after byte `at` of the block.
  auto line_start_from = [&](size_t at) -> size_t {
    if (at == 0 || at >= block.size()) return std::min(at, block.size());
    return block[at - 1] == '\n' ? at : end_of_line(block, at);
  };
  auto tokenize_slice = [&](size_t slice, size_t slices) {
    const size_t end = line_start_from(block.size() * (slice + 1) / slices);
    std::string& out = rendered[slice];
    out.clear();
    size_t lines = 0;
    Line line;
    tokenizer::Encoding encoding;
    for (size_t at = line_start_from(block.size() * slice / slices); at < end; ++lines) {
      const size_t next = end_of_line(block, at);  // end is a line start, so never past it
      std::string_view raw(block.data() + at, next - at);
      if (!raw.empty() && raw.back() == '\n') raw.remove_suffix(1);
      if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
      if (std::string problem = parse_line(options, raw, line); !problem.empty()) {
        // Line numbers are counted only here, on the way out.
        const size_t number = lines_before + 1 + static_cast<size_t>(std::count(block.data(), block.data() + at, '\n'));
        fail<DataError>("{}:{}: {}", reader.name(), number, problem);
      }
      tokenizer.encode_into(line.text, line.pair, max_length, !options.no_special, false, encoding);
      format_encoding(out, encoding, tokenizer.vocab(), line.pair.has_value(), options.ids_only);
      at = next;
    }
    slice_lines[slice] = lines;
  };

  bool have_block = reader.next_block(block, kBlockBytes);
  while (have_block) {
    const size_t slices = std::min(slices_per_block, std::max<size_t>(1, block.size() / 4096));
    std::atomic<size_t> next_slice{0};
    std::atomic<bool> failed{false};
    auto work = [&] {
      for (size_t slice; !failed && (slice = next_slice++) < slices;) {
        try {
          tokenize_slice(slice, slices);
        } catch (...) {
          errors[slice] = std::current_exception();
          failed = true;  // slices before this one were taken earlier and still finish
        }
      }
    };
    std::exception_ptr read_error;
    bool have_next = false;
    {
      std::vector<std::thread> pool;
      for (size_t t = 0; t < std::min(threads, slices); ++t) pool.emplace_back(work);
      try {
        have_next = reader.next_block(next_block, kBlockBytes);
      } catch (...) {
        read_error = std::current_exception();
      }
      for (auto& thread : pool) thread.join();
    }
    // The first failing slice holds the input's first bad line.
    for (size_t slice = 0; slice < slices; ++slice)
      if (errors[slice]) std::rethrow_exception(errors[slice]);
    for (size_t slice = 0; slice < slices; ++slice) {
      std::fwrite(rendered[slice].data(), 1, rendered[slice].size(), stdout);
      lines_before += slice_lines[slice];
    }
    if (read_error) std::rethrow_exception(read_error);
    progress.update(reader.bytes_read());
    std::swap(block, next_block);
    have_block = have_next;
  }
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
