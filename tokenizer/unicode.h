// Unicode helpers for BERT normalization (utf8proc underneath): decoding, categories,
// canonical decomposition, lower-casing — with the exact semantics of Hugging Face
// tokenizers' BertNormalizer and BertPreTokenizer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace recmodel::unicode {

// Decodes one UTF-8 code point at `pos`, advancing it; invalid bytes give U+FFFD.
char32_t decode_next(std::string_view text, size_t& pos);
// Appends the UTF-8 encoding of `cp`.
void append_utf8(std::string& out, char32_t cp);
// Returns the offset of the first invalid UTF-8 sequence, or npos when `text` is valid.
size_t find_invalid_utf8(std::string_view text);

// Returns whether BERT's text cleaning drops `cp` (NUL, U+FFFD, and every "other"
// category Cc/Cf/Cs/Co/Cn except tab, newline and carriage return).
bool is_removed_control(char32_t cp);
// Returns whether `cp` is whitespace in BERT's sense (tab, newline, CR, or the Unicode
// White_Space property).
bool is_whitespace(char32_t cp);
// Returns whether `cp` is punctuation in BERT's sense (ASCII punctuation or category P*).
bool is_punctuation(char32_t cp);
// Returns whether `cp` is in the CJK Unified Ideograph blocks BERT splits into single tokens.
bool is_chinese_char(char32_t cp);
// Returns whether `cp` is a nonspacing mark (Mn), which accent stripping removes.
bool is_nonspacing_mark(char32_t cp);

// Replaces `cps` with its canonical decomposition (NFD: decomposed and reordered).
void decompose_nfd(std::vector<char32_t>& cps, std::vector<char32_t>& scratch);
// Appends the full lower-case mapping of `cp` (U+0130 becomes two code points).
void append_lowercase(std::vector<char32_t>& out, char32_t cp);

// Returns `text` in Unicode NFC.
std::string to_nfc(std::string_view text);

}  // namespace recmodel::unicode
