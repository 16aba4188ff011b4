#include "serving/request_parsing.h"

#include <algorithm>
#include <cstdint>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/json.h"
#include "common/text.h"

namespace recmodel::serving {

namespace {

using json = nlohmann::json;

enum class Api { tei, endpoint, invocations, kserve };

[[noreturn]] void invalid(const std::string& message) { throw RequestError(400, "validation", message); }

// Describes an untrusted value for a message: its type and a short excerpt.
std::string describe(const json& value) {
  if (value.is_null()) return "null";
  return json_type_name(value) + " " + json_excerpt(value, 40);
}

const json* field(const json& object, const char* name) {
  auto it = object.find(name);
  return it == object.end() ? nullptr : &*it;
}

// ---- the body ----

// Returns the 1-based byte at which `body` first nests deeper than `max_depth` (brackets inside
// strings do not count), or 0 when it does not.
size_t too_deep_at(std::string_view body, int max_depth) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > max_depth) return i + 1;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return 0;
}

// Removes nlohmann's "[json.exception.parse_error.101] parse error at line 1, column 5: " prefix:
// the message gives the byte instead.
std::string parse_error_reason(const json::parse_error& e) {
  std::string message = e.what();
  const size_t tag_end = message.find("] ");
  if (message.rfind("[json.exception", 0) == 0 && tag_end != std::string::npos) message.erase(0, tag_end + 2);
  if (message.rfind("parse error", 0) == 0) {
    const size_t colon = message.find(": ");
    if (colon != std::string::npos) message.erase(0, colon + 2);
  }
  return printable(message, 200);
}

bool is_utf8_error(const std::string& what) {
  return what.find("ill-formed UTF-8") != std::string::npos || what.find("invalid string: surrogate") != std::string::npos;
}

// One open array or object of the body, as a SAX pass sees it.
struct Frame {
  bool object = false;
  std::string key;           // object: the key whose value is being read
  bool expecting_key = true;  // object: the next string is a key
  size_t count = 0;          // array: elements completed
  bool first_is_string = false;
  size_t strings = 0;        // strings completed in this container, nested ones included
};

// Follows the body up to a parse error, to say which input the error is in.
class InputLocator {
 public:
  explicit InputLocator(Api api) : api_(api) {}

  bool null() { return value(false); }
  bool boolean(bool) { return value(false); }
  bool number_integer(json::number_integer_t) { return value(false); }
  bool number_unsigned(json::number_unsigned_t) { return value(false); }
  bool number_float(json::number_float_t, const json::string_t&) { return value(false); }
  bool string(json::string_t&) { return value(true); }
  bool binary(json::binary_t&) { return value(false); }
  bool start_object(size_t) {
    stack_.push_back(Frame{});
    stack_.back().object = true;
    return true;
  }
  bool key(json::string_t& key) {
    stack_.back().key = key;
    stack_.back().expecting_key = false;
    return true;
  }
  bool end_object() { return close(); }
  bool start_array(size_t) {
    stack_.push_back(Frame{});
    return true;
  }
  bool end_array() { return close(); }
  bool parse_error(size_t, const std::string&, const nlohmann::detail::exception&) {
    index_ = locate();
    return false;
  }

  // Returns the index of the input the parse error is in, or -1 when it is not in an input's text.
  int64_t index() const { return index_; }

 private:
  bool value(bool is_string) {
    if (stack_.empty()) return true;
    Frame& top = stack_.back();
    if (is_string) ++top.strings;
    completed(top, is_string);
    return true;
  }
  bool close() {
    const size_t strings = stack_.back().strings;
    stack_.pop_back();
    if (!stack_.empty()) {
      stack_.back().strings += strings;
      completed(stack_.back(), false);
    }
    return true;
  }
  static void completed(Frame& frame, bool is_string) {
    if (frame.object) {
      frame.expecting_key = true;
    } else {
      if (frame.count == 0) frame.first_is_string = is_string;
      ++frame.count;
    }
  }
  // The position of the element being read inside stack_[level].
  bool is_key(size_t level, const char* name) const {
    return level < stack_.size() && stack_[level].object && !stack_[level].expecting_key && stack_[level].key == name;
  }
  bool is_array(size_t level) const { return level < stack_.size() && !stack_[level].object; }

  int64_t locate() const {
    if (stack_.empty()) return -1;
    if (stack_.back().object && stack_.back().expecting_key) return -1;  // in a key
    const size_t depth = stack_.size();
    switch (api_) {
      case Api::tei:
      case Api::endpoint:
        if (!is_key(0, "inputs")) return -1;
        if (depth == 1 || stack_[1].object) return 0;
        if (stack_[1].first_is_string || (stack_[1].count == 0 && depth == 2)) return 0;  // one [text, pair]
        return static_cast<int64_t>(stack_[1].count);
      case Api::invocations:
        if (is_key(0, "inputs") || is_key(0, "instances")) {
          if (depth == 1) return 0;
          if (is_array(1)) return static_cast<int64_t>(stack_[1].count);
          // Columnar {"text": [...], "text_pair": [...]}, or one {"text", "text_pair"} object.
          if (depth >= 3 && is_array(2)) return static_cast<int64_t>(stack_[2].count);
          return 0;
        }
        if (is_key(0, "dataframe_records") && is_array(1)) return static_cast<int64_t>(stack_[1].count);
        if (is_key(0, "dataframe_split") && is_key(1, "data") && is_array(2))
          return static_cast<int64_t>(stack_[2].count);
        return -1;
      case Api::kserve: {
        // {"inputs": [{"data": [...]}]}: the strings of the tensor's data before this one.
        if (!is_key(0, "inputs") || !is_array(1) || !is_key(2, "data") || !is_array(3)) return -1;
        size_t strings = 0;
        for (size_t level = 3; level < depth; ++level) strings += stack_[level].strings;
        return static_cast<int64_t>(strings);
      }
    }
    return -1;
  }

  Api api_;
  std::vector<Frame> stack_;
  int64_t index_ = -1;
};

// Parses the body with the nesting limit. Invalid UTF-8 in an input's text is the input's
// problem (422 naming it), like blank text; any other malformed body is 400 invalid_json.
json parse_body(std::string_view body, Api api) {
  struct TooDeep {};
  json::parser_callback_t limit = [](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= kMaxJsonDepth)
      throw TooDeep{};
    return true;
  };
  try {
    return json::parse(body.begin(), body.end(), limit);
  } catch (const TooDeep&) {
    throw RequestError(400, "invalid_json",
                       fmt::format("invalid JSON at byte {}: nested deeper than {} levels",
                                   std::max<size_t>(too_deep_at(body, kMaxJsonDepth), 1), kMaxJsonDepth));
  } catch (const json::parse_error& e) {
    if (is_utf8_error(e.what())) {
      InputLocator locator(api);
      json::sax_parse(body.begin(), body.end(), &locator);
      if (locator.index() >= 0)
        throw RequestError(422, "tokenizer",
                           fmt::format("input {}: invalid UTF-8 at byte {} of the body", locator.index(), e.byte));
    }
    throw RequestError(400, "invalid_json", fmt::format("invalid JSON at byte {}: {}", e.byte, parse_error_reason(e)));
  }
}

json parse_object(std::string_view body, Api api) {
  json doc = parse_body(body, api);
  if (!doc.is_object()) invalid(fmt::format("the request body must be a JSON object, not {}", describe(doc)));
  return doc;
}

// ---- fields ----

std::optional<bool> optional_bool(const json& object, const char* name, const std::string& where) {
  const json* value = field(object, name);
  if (!value || value->is_null()) return std::nullopt;
  if (!value->is_boolean()) invalid(fmt::format("{} must be true or false, not {}", where, describe(*value)));
  return value->get<bool>();
}

std::string text_of(const json& value, const std::string& where) {
  if (!value.is_string()) invalid(fmt::format("{} must be a string, not {}", where, describe(value)));
  return value.get<std::string>();
}

std::optional<std::string> optional_text(const json* value, const std::string& where) {
  if (!value || value->is_null()) return std::nullopt;
  return text_of(*value, where);
}

// {"text": "...", "text_pair": "..."?}; other keys are refused, so a misspelt text_pair is not ignored.
model::TextInput object_input(const json& object, const std::string& where) {
  for (auto it = object.begin(); it != object.end(); ++it)
    if (it.key() != "text" && it.key() != "text_pair")
      invalid(fmt::format("{} has an unknown field {} (expected text, text_pair)", where, quoted_for_message(it.key(), 40)));
  const json* text = field(object, "text");
  if (!text) invalid(fmt::format("{} has no \"text\"", where));
  return {text_of(*text, where + ".text"), optional_text(field(object, "text_pair"), where + ".text_pair")};
}

// One input of a list: "t", ["t"], ["t", "pair"] or, where `objects`, {"text", "text_pair"}.
model::TextInput item_input(const json& item, const std::string& where, bool objects) {
  const std::string shapes = objects ? "a string, a [text, pair] list of 1-2 strings or a {\"text\", \"text_pair\"} object"
                                     : "a string or a [text, pair] list of 1-2 strings";
  if (item.is_string()) return {item.get<std::string>(), std::nullopt};
  if (item.is_array() && !item.empty() && item.size() <= 2 && item[0].is_string() && item.back().is_string()) {
    model::TextInput input{item[0].get<std::string>(), std::nullopt};
    if (item.size() == 2) input.pair = item[1].get<std::string>();
    return input;
  }
  if (objects && item.is_object()) return object_input(item, where);
  invalid(fmt::format("{} must be {}, not {}", where, shapes, describe(item)));
}

// TEI's "inputs" (and, where `objects`, the endpoint's {"text", "text_pair"} forms).
void read_tei_inputs(const json& inputs, ParsedRequest& request, bool objects) {
  if (inputs.is_string()) {
    request.inputs.push_back({inputs.get<std::string>(), std::nullopt});
    return;
  }
  if (objects && inputs.is_object()) {
    request.inputs.push_back(object_input(inputs, "inputs"));
    return;
  }
  if (!inputs.is_array())
    invalid(fmt::format("inputs must be a string or a list{}, not {}", objects ? " or a {\"text\", \"text_pair\"} object" : "",
                        describe(inputs)));
  if (inputs.empty()) throw RequestError(400, "empty", "inputs is empty");
  if (inputs[0].is_string()) {
    // TEI's rule: a list that starts with a string is one input, a text and its pair.
    if (inputs.size() > 2)
      invalid(fmt::format("inputs is a list of {} values: a list that starts with a string is one input of 1-2 "
                          "strings (text, pair); send a batch as [[\"a\"], [\"b\"], ...]",
                          inputs.size()));
    model::TextInput input{inputs[0].get<std::string>(), std::nullopt};
    if (inputs.size() == 2) input.pair = text_of(inputs[1], "inputs[1] (the pair of inputs[0])");
    request.inputs.push_back(std::move(input));
    return;
  }
  request.batch = true;
  request.inputs.reserve(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i)
    request.inputs.push_back(item_input(inputs[i], fmt::format("inputs[{}]", i), objects));
}

void read_truncation_direction(const json& doc) {
  const json* direction = field(doc, "truncation_direction");
  if (!direction || direction->is_null()) return;
  std::string value = direction->is_string() ? direction->get<std::string>() : std::string();
  std::transform(value.begin(), value.end(), value.begin(), [](unsigned char c) { return std::tolower(c); });
  if (value == "right") return;
  if (value == "left") invalid("truncation_direction \"left\" is not supported: recmodel truncates on the right");
  invalid(fmt::format("truncation_direction must be \"right\", not {}", describe(*direction)));
}

void read_tei_flags(const json& doc, ParsedRequest& request) {
  if (auto truncate = optional_bool(doc, "truncate", "truncate")) request.truncate = *truncate;
  if (auto raw = optional_bool(doc, "raw_scores", "raw_scores")) request.raw_scores = *raw;
  read_truncation_direction(doc);
}

const json& required(const json& doc, const char* name) {
  const json* value = field(doc, name);
  if (!value) invalid(fmt::format("the request has no \"{}\"", name));
  return *value;
}

// ---- MLflow ----

// MLflow's {"inputs" | "instances": ...}: a list of items, one item, or columns {"text": [...], "text_pair": [...]}.
void read_instances(const json& value, const std::string& name, ParsedRequest& request) {
  if (value.is_string()) {
    request.inputs.push_back({value.get<std::string>(), std::nullopt});
    return;
  }
  if (value.is_object()) {
    const json* text = field(value, "text");
    if (text && text->is_array()) {
      // Columnar: {"text": ["a", "b"], "text_pair": ["x", "y"]?}.
      for (auto it = value.begin(); it != value.end(); ++it)
        if (it.key() != "text" && it.key() != "text_pair")
          invalid(fmt::format("{} has an unknown column {} (expected text, text_pair)", name,
                              quoted_for_message(it.key(), 40)));
      const json* pair = field(value, "text_pair");
      if (pair && !pair->is_null() && (!pair->is_array() || pair->size() != text->size()))
        invalid(fmt::format("{}.text_pair must be a list of {} strings like {}.text, not {}", name, text->size(), name,
                            describe(*pair)));
      if (text->empty()) throw RequestError(400, "empty", fmt::format("{} is empty", name));
      request.batch = true;
      for (size_t i = 0; i < text->size(); ++i) {
        model::TextInput input{text_of((*text)[i], fmt::format("{}.text[{}]", name, i)), std::nullopt};
        if (pair && !pair->is_null()) input.pair = optional_text(&(*pair)[i], fmt::format("{}.text_pair[{}]", name, i));
        request.inputs.push_back(std::move(input));
      }
      return;
    }
    request.inputs.push_back(object_input(value, name));
    return;
  }
  if (!value.is_array())
    invalid(fmt::format("{} must be a list of inputs, a string or a {{\"text\", \"text_pair\"}} object, not {}", name,
                        describe(value)));
  if (value.empty()) throw RequestError(400, "empty", fmt::format("{} is empty", name));
  request.batch = true;
  request.inputs.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i)
    request.inputs.push_back(item_input(value[i], fmt::format("{}[{}]", name, i), /*objects=*/true));
}

void read_dataframe_split(const json& split, ParsedRequest& request) {
  if (!split.is_object()) invalid(fmt::format("dataframe_split must be an object, not {}", describe(split)));
  const json* columns = field(split, "columns");
  if (!columns || !columns->is_array()) invalid("dataframe_split needs \"columns\", a list of column names");
  size_t text_at = SIZE_MAX, pair_at = SIZE_MAX;
  for (size_t c = 0; c < columns->size(); ++c) {
    const std::string name = text_of((*columns)[c], fmt::format("dataframe_split.columns[{}]", c));
    if (name == "text" && text_at == SIZE_MAX) text_at = c;
    if (name == "text_pair" && pair_at == SIZE_MAX) pair_at = c;
  }
  if (text_at == SIZE_MAX)
    invalid(fmt::format("dataframe_split.columns has no \"text\" column: {}", json_excerpt(*columns, 60)));
  const json* data = field(split, "data");
  if (!data || !data->is_array()) invalid("dataframe_split needs \"data\", a list of rows");
  if (data->empty()) throw RequestError(400, "empty", "dataframe_split.data is empty");
  request.batch = true;
  request.inputs.reserve(data->size());
  for (size_t i = 0; i < data->size(); ++i) {
    const json& row = (*data)[i];
    const std::string where = fmt::format("dataframe_split.data[{}]", i);
    if (!row.is_array() || row.size() != columns->size())
      invalid(fmt::format("{} must be a row of {} values (one per column), not {}", where, columns->size(), describe(row)));
    model::TextInput input{text_of(row[text_at], fmt::format("{}[{}] (text)", where, text_at)), std::nullopt};
    if (pair_at != SIZE_MAX) input.pair = optional_text(&row[pair_at], fmt::format("{}[{}] (text_pair)", where, pair_at));
    request.inputs.push_back(std::move(input));
  }
}

void read_dataframe_records(const json& records, ParsedRequest& request) {
  if (!records.is_array()) invalid(fmt::format("dataframe_records must be a list of records, not {}", describe(records)));
  if (records.empty()) throw RequestError(400, "empty", "dataframe_records is empty");
  request.batch = true;
  request.inputs.reserve(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    const json& record = records[i];
    const std::string where = fmt::format("dataframe_records[{}]", i);
    if (!record.is_object()) invalid(fmt::format("{} must be an object, not {}", where, describe(record)));
    // Other columns (an id, ...) are the caller's, as in `recmodel predict`.
    const json* text = field(record, "text");
    if (!text) invalid(fmt::format("{} has no \"text\"", where));
    request.inputs.push_back({text_of(*text, where + ".text"), optional_text(field(record, "text_pair"), where + ".text_pair")});
  }
}

// ---- KServe ----

struct Tensor {
  size_t index = 0;
  std::string name;
  std::vector<std::string> texts;
};

void flatten_strings(const json& data, const std::string& where, std::vector<std::string>& out) {
  for (const json& element : data) {
    if (element.is_array()) {
      flatten_strings(element, where, out);  // depth is bounded by the parse limit
    } else if (element.is_string()) {
      out.push_back(element.get<std::string>());
    } else {
      invalid(fmt::format("{}[{}] must be a string, not {}", where, out.size(), describe(element)));
    }
  }
}

Tensor read_tensor(const json& tensor, size_t index) {
  const std::string where = fmt::format("inputs[{}]", index);
  if (!tensor.is_object()) invalid(fmt::format("{} must be a tensor object, not {}", where, describe(tensor)));
  Tensor out;
  out.index = index;
  const json* name = field(tensor, "name");
  out.name = name ? text_of(*name, where + ".name") : std::string();
  const json* datatype = field(tensor, "datatype");
  if (!datatype) invalid(fmt::format("{} has no \"datatype\" (texts are BYTES)", where));
  if (!datatype->is_string() || datatype->get<std::string>() != "BYTES")
    invalid(fmt::format("{}.datatype must be \"BYTES\" (texts), not {}", where, describe(*datatype)));
  const json* shape = field(tensor, "shape");
  if (!shape) invalid(fmt::format("{} has no \"shape\"", where));
  const bool shape_ok = shape->is_array() && (shape->size() == 1 || shape->size() == 2) &&
                        std::all_of(shape->begin(), shape->end(),
                                    [](const json& d) { return d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0); }) &&
                        (shape->size() == 1 || (*shape)[1].get<int64_t>() == 1);
  if (!shape_ok) invalid(fmt::format("{}.shape must be [N] or [N, 1], not {}", where, json_excerpt(*shape, 40)));
  const json* data = field(tensor, "data");
  if (!data) invalid(fmt::format("{} has no \"data\"", where));
  if (!data->is_array()) invalid(fmt::format("{}.data must be a list of strings, not {}", where, describe(*data)));
  flatten_strings(*data, where + ".data", out.texts);
  const uint64_t n = (*shape)[0].get<uint64_t>();
  if (n != out.texts.size())
    invalid(fmt::format("{}.shape {} does not match {} data elements", where, json_excerpt(*shape, 40), out.texts.size()));
  return out;
}

}  // namespace

ParsedRequest parse_tei_request(std::string_view body) {
  const json doc = parse_object(body, Api::tei);
  ParsedRequest request;
  read_tei_inputs(required(doc, "inputs"), request, /*objects=*/false);
  read_tei_flags(doc, request);
  return request;
}

ParsedRequest parse_endpoint_request(std::string_view body) {
  const json doc = parse_object(body, Api::endpoint);
  ParsedRequest request;
  read_tei_inputs(required(doc, "inputs"), request, /*objects=*/true);
  read_tei_flags(doc, request);
  if (request.raw_scores) request.function = ScoreFunction::none;
  const json* parameters = field(doc, "parameters");
  if (parameters && !parameters->is_null()) {
    if (!parameters->is_object()) invalid(fmt::format("parameters must be an object, not {}", describe(*parameters)));
    // Other pipeline parameters (padding, max_length, ...) are the server's to choose; they are ignored.
    const json* top_k = field(*parameters, "top_k");
    if (top_k && !top_k->is_null()) {
      if (!(top_k->is_number_unsigned() || top_k->is_number_integer()) || top_k->get<int64_t>() < 1)
        invalid(fmt::format("parameters.top_k must be a positive integer, not {}", describe(*top_k)));
      request.top_k = top_k->get<uint64_t>();
    }
    const json* function = field(*parameters, "function_to_apply");
    if (function && !function->is_null()) {
      const std::string name = function->is_string() ? function->get<std::string>() : std::string();
      if (name == "softmax") request.function = ScoreFunction::softmax;
      else if (name == "sigmoid") request.function = ScoreFunction::sigmoid;
      else if (name == "none") request.function = ScoreFunction::none;
      else invalid(fmt::format("parameters.function_to_apply must be \"softmax\", \"sigmoid\" or \"none\", not {}",
                               describe(*function)));
    }
    if (auto truncation = optional_bool(*parameters, "truncation", "parameters.truncation")) request.truncate = *truncation;
  }
  return request;
}

ParsedRequest parse_invocations_request(std::string_view body) {
  const json doc = parse_object(body, Api::invocations);
  static const char* const kForms[] = {"inputs", "instances", "dataframe_split", "dataframe_records"};
  std::vector<std::string> present;
  for (const char* form : kForms)
    if (doc.contains(form)) present.emplace_back(form);
  if (present.empty())
    invalid("the request needs one of \"inputs\", \"instances\", \"dataframe_split\" or \"dataframe_records\"");
  if (present.size() > 1)
    invalid(fmt::format("the request holds both \"{}\" and \"{}\": send exactly one", present[0], present[1]));
  ParsedRequest request;
  const json& value = doc[present[0]];
  if (present[0] == "dataframe_split") read_dataframe_split(value, request);
  else if (present[0] == "dataframe_records") read_dataframe_records(value, request);
  else read_instances(value, present[0], request);
  // MLflow's "params" hold inference parameters.
  const json* params = field(doc, "params");
  if (params && !params->is_null()) {
    if (!params->is_object()) invalid(fmt::format("params must be an object, not {}", describe(*params)));
    if (auto truncate = optional_bool(*params, "truncate", "params.truncate")) request.truncate = *truncate;
  }
  return request;
}

ParsedRequest parse_kserve_request(std::string_view body) {
  const json doc = parse_object(body, Api::kserve);
  ParsedRequest request;
  request.batch = true;
  if (const json* id = field(doc, "id"); id && !id->is_null()) request.id = text_of(*id, "id");

  const json& inputs = required(doc, "inputs");
  if (!inputs.is_array()) invalid(fmt::format("inputs must be a list of tensors, not {}", describe(inputs)));
  if (inputs.empty()) invalid("inputs holds no tensor: send a BYTES tensor named \"text\"");
  size_t text_at = SIZE_MAX, pair_at = SIZE_MAX;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const json& tensor = inputs[i];
    const json* name = tensor.is_object() ? field(tensor, "name") : nullptr;
    const std::string n = name && name->is_string() ? name->get<std::string>() : std::string();
    if (n == "text" && text_at == SIZE_MAX) text_at = i;
    else if (n == "text_pair" && pair_at == SIZE_MAX) pair_at = i;
    else if (inputs.size() > 1)
      invalid(fmt::format("inputs[{}] is named {}: the model's inputs are \"text\" and \"text_pair\"", i,
                          name ? describe(*name) : std::string("nothing")));
  }
  if (text_at == SIZE_MAX) text_at = 0;  // a single tensor under another name holds the texts
  if (pair_at == text_at) pair_at = SIZE_MAX;
  const Tensor text = read_tensor(inputs[text_at], text_at);
  if (text.texts.empty()) throw RequestError(400, "empty", fmt::format("inputs[{}] is empty", text_at));
  request.inputs.reserve(text.texts.size());
  for (const std::string& t : text.texts) request.inputs.push_back({t, std::nullopt});
  if (pair_at != SIZE_MAX) {
    const Tensor pair = read_tensor(inputs[pair_at], pair_at);
    if (pair.texts.size() != text.texts.size())
      invalid(fmt::format("inputs[{}] (text_pair) has {} elements; text has {}", pair_at, pair.texts.size(),
                          text.texts.size()));
    for (size_t i = 0; i < pair.texts.size(); ++i) request.inputs[i].pair = pair.texts[i];
  }

  if (const json* outputs = field(doc, "outputs"); outputs && !outputs->is_null()) {
    if (!outputs->is_array()) invalid(fmt::format("outputs must be a list of {{\"name\"}} objects, not {}", describe(*outputs)));
    for (size_t i = 0; i < outputs->size(); ++i) {
      const json& output = (*outputs)[i];
      const std::string where = fmt::format("outputs[{}]", i);
      if (!output.is_object()) invalid(fmt::format("{} must be an object with a \"name\", not {}", where, describe(output)));
      const json* name = field(output, "name");
      if (!name) invalid(fmt::format("{} has no \"name\"", where));
      const std::string n = text_of(*name, where + ".name");
      if (n != "label" && n != "score" && n != "probabilities" && n != "value")
        invalid(fmt::format("{}.name {} is not an output of the model (label, score, probabilities; value for regression)",
                            where, quoted_for_message(n, 40)));
      if (std::find(request.outputs.begin(), request.outputs.end(), n) == request.outputs.end()) request.outputs.push_back(n);
    }
  }
  if (const json* parameters = field(doc, "parameters"); parameters && !parameters->is_null()) {
    if (!parameters->is_object()) invalid(fmt::format("parameters must be an object, not {}", describe(*parameters)));
    if (auto truncate = optional_bool(*parameters, "truncate", "parameters.truncate")) request.truncate = *truncate;
  }
  return request;
}

}  // namespace recmodel::serving
