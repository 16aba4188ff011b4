#include "common/json.h"

#include "common/error.h"
#include "common/files.h"
#include "common/text.h"

namespace recmodel {

namespace {

// Parses `text` with the nesting limit; on failure returns a discarded value and sets `why`.
template <typename Json>
Json parse_or_explain(std::string_view text, int max_depth, std::string& why) {
  // The callback sees every opening bracket with its depth; throwing stops the parse before
  // the document can nest any deeper (nlohmann's parser itself is iterative).
  struct TooDeep {};
  typename Json::parser_callback_t limit = [&](int depth, nlohmann::json::parse_event_t event, Json&) {
    if ((event == nlohmann::json::parse_event_t::object_start ||
         event == nlohmann::json::parse_event_t::array_start) &&
        depth >= max_depth)
      throw TooDeep{};
    return true;
  };
  why.clear();
  try {
    return Json::parse(text.begin(), text.end(), limit);
  } catch (const TooDeep&) {
    why = fmt::format("JSON nested deeper than {} levels", max_depth);
  } catch (const nlohmann::json::parse_error& e) {
    // e.what() quotes at most a short excerpt of the input; its "[json.exception...] " tag is noise.
    std::string message = e.what();
    const size_t tag_end = message.find("] ");
    if (message.rfind("[json.exception", 0) == 0 && tag_end != std::string::npos) message.erase(0, tag_end + 2);
    why = "not valid JSON: " + printable(message, 200);
  }
  return Json(nlohmann::json::value_t::discarded);
}

template <typename Json>
Json parse_bounded(std::string_view text, const std::string& source, int max_depth) {
  std::string why;
  Json value = parse_or_explain<Json>(text, max_depth, why);
  if (!why.empty()) fail<DataError>("{}: {}", source, why);
  return value;
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
  return printable(compact, max_chars);
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

nlohmann::json try_parse_json(std::string_view text, std::string& why, int max_depth) {
  return parse_or_explain<nlohmann::json>(text, max_depth, why);
}

nlohmann::ordered_json try_parse_ordered_json(std::string_view text, std::string& why, int max_depth) {
  return parse_or_explain<nlohmann::ordered_json>(text, max_depth, why);
}

nlohmann::json read_json_file(const fs::path& path, int max_depth) {
  return parse_json(read_file(path), path.string(), max_depth);
}

std::string json_excerpt(const nlohmann::json& value, size_t max_chars) { return excerpt(value, max_chars); }

namespace {

bool flat_array(const nlohmann::json& value) {
  if (!value.is_array()) return false;
  for (const auto& item : value)
    if (item.is_structured()) return false;
  return true;
}

void append_pretty(std::string& out, const nlohmann::json& value, size_t depth) {
  const auto dump = [](const nlohmann::json& v) {
    return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  if (!value.is_structured() || value.empty()) {
    out += dump(value);
    return;
  }
  if (flat_array(value)) {
    out += '[';
    bool first = true;
    for (const auto& item : value) {
      if (!first) out += ", ";
      first = false;
      out += dump(item);
    }
    out += ']';
    return;
  }
  const std::string inner((depth + 1) * 2, ' ');
  out += value.is_object() ? "{\n" : "[\n";
  bool first = true;
  for (auto it = value.begin(); it != value.end(); ++it) {
    if (!first) out += ",\n";
    first = false;
    out += inner;
    if (value.is_object()) {
      out += dump(nlohmann::json(it.key()));
      out += ": ";
    }
    append_pretty(out, *it, depth + 1);
  }
  out += '\n';
  out += std::string(depth * 2, ' ');
  out += value.is_object() ? '}' : ']';
}

}  // namespace

std::string pretty_json(const nlohmann::json& value) {
  std::string out;
  append_pretty(out, value, 0);
  return out;
}

std::string json_dump(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string json_quoted(std::string_view text) { return json_dump(nlohmann::json(text)); }
std::string json_excerpt(const nlohmann::ordered_json& value, size_t max_chars) { return excerpt(value, max_chars); }
std::string json_type_name(const nlohmann::json& value) { return type_name(value); }
std::string json_type_name(const nlohmann::ordered_json& value) { return type_name(value); }

}  // namespace recmodel
