#include "common/text.h"

#include <fmt/format.h>

namespace recmodel {

namespace {

// Decodes the UTF-8 character at text[i]; returns its length, 0 for a byte that does not start
// a well-formed character (a stray continuation, a truncated or overlong sequence, a surrogate).
size_t decode_utf8(std::string_view text, size_t i, char32_t& code) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  size_t length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 0;
  if (length == 0 || i + length > text.size()) return 0;
  code = length == 1 ? lead : lead & (0x7F >> length);
  for (size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    code = (code << 6) | (byte(i + k) & 0x3F);
  }
  static constexpr char32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (code < kSmallest[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  return length;
}

bool acts_on_terminal(char32_t code) {
  return code < 0x20 || (code >= 0x7F && code <= 0x9F) || code == 0x2028 || code == 0x2029 || code == 0x200E ||
         code == 0x200F || (code >= 0x202A && code <= 0x202E) || (code >= 0x2066 && code <= 0x2069);
}

}  // namespace

bool has_control_character(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    char32_t code = 0;
    const size_t length = decode_utf8(text, i, code);
    if (length != 0 && acts_on_terminal(code)) return true;
    i += length == 0 ? 1 : length;
  }
  return false;
}

std::string printable(std::string_view text, size_t max_bytes) {
  std::string out;
  size_t i = 0;
  while (i < text.size() && out.size() < max_bytes) {
    char32_t code = 0;
    const size_t length = decode_utf8(text, i, code);
    if (length == 0) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(text[i]));
      ++i;
    } else {
      if (!acts_on_terminal(code)) out.append(text.substr(i, length));
      else if (code < 0x80) out += fmt::format("\\x{:02x}", static_cast<unsigned>(code));
      else out += fmt::format("\\u{:04x}", static_cast<unsigned>(code));
      i += length;
    }
  }
  if (i < text.size()) out += "…";
  return out;
}

std::string quoted_for_message(std::string_view text, size_t max_bytes) { return "'" + printable(text, max_bytes) + "'"; }

}  // namespace recmodel
