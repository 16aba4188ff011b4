// Untrusted text in messages: one formatter, so a name from a manifest, a CSV label or a tensor
// name read from a crafted file can neither drive the terminal (ESC, CSI, bidi overrides) nor
// flood it.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace recmodel {

// Returns whether `text` holds a character a terminal or a reader acts on: C0 controls (ESC,
// newline, NUL, ...), DEL, C1 controls (U+0080..U+009F), the line and paragraph separators
// U+2028/U+2029 and the bidirectional controls (U+200E/F, U+202A..E, U+2066..9).
bool has_control_character(std::string_view text);

// Returns `text` safe to print: those characters and bytes that are not UTF-8 written as
// \xNN or \uNNNN, cut to about `max_bytes` at a character boundary, "…" when cut.
std::string printable(std::string_view text, size_t max_bytes = 120);

// printable(text) in single quotes: how messages quote a name they did not choose.
std::string quoted_for_message(std::string_view text, size_t max_bytes = 120);

}  // namespace recmodel
