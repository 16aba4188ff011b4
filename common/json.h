// JSON from files recmodel did not write (model folders, dataset manifests, remote manifests):
// parsed with a nesting limit, so a crafted file cannot exhaust the stack in parsing, copying
// or printing, and described in messages by a short excerpt, never dumped whole.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace recmodel {

namespace fs = std::filesystem;

// Deep enough for every real config, tokenizer or manifest (they nest 4-6 levels).
constexpr int kMaxJsonDepth = 64;

// Parses `text`; malformed text or nesting deeper than `max_depth` is a DataError naming `source`.
nlohmann::json parse_json(std::string_view text, const std::string& source, int max_depth = kMaxJsonDepth);
nlohmann::ordered_json parse_ordered_json(std::string_view text, const std::string& source,
                                          int max_depth = kMaxJsonDepth);

// The same for a value that is one of many (a JSONL line, a column): returns a discarded value
// and sets `why` ("JSON nested deeper than 64 levels", "not valid JSON: ...") instead of throwing.
nlohmann::json try_parse_json(std::string_view text, std::string& why, int max_depth = kMaxJsonDepth);
nlohmann::ordered_json try_parse_ordered_json(std::string_view text, std::string& why,
                                              int max_depth = kMaxJsonDepth);

// Reads and parses a file (NotFoundError when missing, DataError when malformed or too deep).
nlohmann::json read_json_file(const fs::path& path, int max_depth = kMaxJsonDepth);

// Returns a one-line excerpt of an untrusted value for an error message: at most `max_chars`
// characters of its compact form, control characters escaped, "…" when cut. Arrays and objects
// deeper than a few levels are shown by their type alone, so this never recurses far.
std::string json_excerpt(const nlohmann::json& value, size_t max_chars = 40);
std::string json_excerpt(const nlohmann::ordered_json& value, size_t max_chars = 40);

// Returns `value` indented two spaces a level, like dump(2), except that an array of numbers,
// strings, booleans or nulls stays on one line (recmodel.json's profile samples: one line, not
// ten thousand).
std::string pretty_json(const nlohmann::json& value);

// Returns `value` as compact JSON text; invalid UTF-8 in its strings becomes U+FFFD instead of
// an exception (for text that came from a request or a file).
std::string json_dump(const nlohmann::json& value);
// Returns `text` as a JSON string literal, quotes included, with json_dump's U+FFFD rule.
std::string json_quoted(std::string_view text);

// Returns the JSON type's name as users know it: "string", "number", "array", ...
std::string json_type_name(const nlohmann::json& value);
std::string json_type_name(const nlohmann::ordered_json& value);

}  // namespace recmodel
