// Text cleaning applied to every text before de-duplication and tokenization:
// HTML tags and entities, Unicode NFC, whitespace.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace recmodel::data {

// Removes HTML markup: known element tags (<p>, </b>, <br/>, <img src=...>), comments,
// <!DOCTYPE>/<?...?> and the contents of <script> and <style>. Block-level tags become a space
// so words do not run together; inline ones (<b>, <span>) vanish. A '<' that does not start a
// known tag is kept, so "a < b", "5<10" and "<3" survive.
std::string strip_html_tags(std::string_view text);

// Decodes HTML character references: the common named ones (&amp; &lt; &gt; &quot; &apos; &nbsp;
// and the HTML 4 Latin-1 and typographic set) and numeric ones (&#233; &#xE9;). Unknown names and
// references without the closing ';' are kept as written, so "AT&T" survives.
std::string decode_html_entities(std::string_view text);

// Replaces every run of whitespace (ASCII and Unicode spaces such as U+00A0, U+3000, U+2028) by
// one ASCII space and trims both ends.
std::string collapse_whitespace(std::string_view text);

// Returns the Unicode NFC form of valid UTF-8 `text` (text that is plainly NFC skips utf8proc).
std::string normalize_nfc(std::string_view text);

// Cleans one text for the dataset: HTML tags, then entities, then NFC, then whitespace.
// `text` must be valid UTF-8.
std::string clean_text(std::string_view text);

// Returns `text` without leading and trailing ASCII whitespace.
std::string_view trim(std::string_view text);

}  // namespace recmodel::data
