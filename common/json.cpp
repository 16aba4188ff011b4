#include "common/json.h"

#include "common/error.h"
#include "common/files.h"

namespace recmodel {

namespace {

// Escapes control characters and cuts `text` to `max_chars` bytes (at a UTF-8 boundary).
std::string printable_excerpt(const std::string& text, size_t max_chars) {
  std::string out;
  size_t end = std::min(text.size(), max_chars);
  while (end < text.size() && end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  for (size_t i = 0; i < end; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7F)
      out += fmt::format("\\x{:02x}", c);
    else
      out += static_cast<char>(c);
  }
  if (end < text.size()) out += "…";
  return out;
}

template <typename Json>
Json parse_bounded(std::string_view text, const std::string& source, int max_depth) {
  // The callback sees every opening bracket with its depth; throwing stops the parse before
  // the document can nest any deeper (nlohmann's parser itself is iterative).
  typename Json::parser_callback_t limit = [&](int depth, nlohmann::json::parse_event_t event, Json&) {
    if ((event == nlohmann::json::parse_event_t::object_start ||
         event == nlohmann::json::parse_event_t::array_start) &&
        depth >= max_depth)
      fail<DataError>("{}: JSON nested deeper than {} levels", source, max_depth);
    return true;
  };
  try {
    return Json::parse(text.begin(), text.end(), limit);
  } catch (const nlohmann::json::parse_error& e) {
    // e.what() quotes at most a short excerpt of the input, with control characters escaped.
    fail<DataError>("{}: not valid JSON: {}", source, printable_excerpt(e.what(), 200));
  }
}

template <typename Json>
void append_excerpt(const Json& value, std::string& out, size_t budget, int depth) {
  if (out.size() > budget) return;
  if (value.is_object() || value.is_array()) {
    if (depth >= 3) {
      out += value.is_object() ? "{…}" : "[…]";
      return;
    }
    const bool object = value.is_object();
    out += object ? '{' : '[';
    bool first = true;
    for (auto it = value.begin(); it != value.end() && out.size() <= budget; ++it) {
      if (!first) out += ',';
      first = false;
      if (object) out += Json(it.key()).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + ':';
      append_excerpt(*it, out, budget, depth + 1);
    }
    out += object ? '}' : ']';
    return;
  }
  out += value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

template <typename Json>
std::string excerpt(const Json& value, size_t max_chars) {
  std::string compact;
  append_excerpt(value, compact, max_chars, 0);
  return printable_excerpt(compact, max_chars);
}

template <typename Json>
std::string type_name(const Json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::null: return "null";
    case nlohmann::json::value_t::boolean: return "boolean";
    case nlohmann::json::value_t::string: return "string";
    case nlohmann::json::value_t::array: return "array";
    case nlohmann::json::value_t::object: return "object";
    case nlohmann::json::value_t::binary: return "binary";
    case nlohmann::json::value_t::discarded: return "discarded";
    default: return "number";
  }
}

}  // namespace

nlohmann::json parse_json(std::string_view text, const std::string& source, int max_depth) {
  return parse_bounded<nlohmann::json>(text, source, max_depth);
}

nlohmann::ordered_json parse_ordered_json(std::string_view text, const std::string& source, int max_depth) {
  return parse_bounded<nlohmann::ordered_json>(text, source, max_depth);
}

nlohmann::json read_json_file(const fs::path& path, int max_depth) {
  return parse_json(read_file(path), path.string(), max_depth);
}

std::string json_excerpt(const nlohmann::json& value, size_t max_chars) { return excerpt(value, max_chars); }
std::string json_excerpt(const nlohmann::ordered_json& value, size_t max_chars) { return excerpt(value, max_chars); }
std::string json_type_name(const nlohmann::json& value) { return type_name(value); }
std::string json_type_name(const nlohmann::ordered_json& value) { return type_name(value); }

}  // namespace recmodel
