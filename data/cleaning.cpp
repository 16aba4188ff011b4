#include "data/cleaning.h"

#include <utf8proc.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

#include "tokenizer/unicode.h"

namespace recmodel::data {

namespace {

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
bool is_ascii_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_ascii_alnum(char c) { return is_ascii_alpha(c) || (c >= '0' && c <= '9'); }
bool is_ascii_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// Element names whose tags are removed. Inline elements vanish without a trace, as a browser
// renders "<b>Big</b>Sale" as "BigSale"; everything else separates words like a line break.
enum class TagKind { inline_tag, block_tag };

const std::unordered_map<std::string_view, TagKind>& known_tags() {
  static const std::unordered_map<std::string_view, TagKind> tags = [] {
    std::unordered_map<std::string_view, TagKind> t;
    for (std::string_view name :
         {"a", "abbr", "acronym", "b", "bdi", "bdo", "big", "cite", "code", "del", "dfn", "em", "font",
          "i", "ins", "kbd", "mark", "q", "s", "samp", "small", "span", "strike", "strong", "sub", "sup",
          "time", "tt", "u", "var", "wbr", "nobr"})
      t.emplace(name, TagKind::inline_tag);
    for (std::string_view name :
         {"address", "article", "aside", "audio", "blockquote", "body", "br", "button", "canvas",
          "caption", "center", "col", "colgroup", "dd", "details", "dialog", "dir", "div", "dl", "dt",
          "embed", "fieldset", "figcaption", "figure", "footer", "form", "frame", "frameset", "h1", "h2",
          "h3", "h4", "h5", "h6", "head", "header", "hr", "html", "iframe", "img", "input", "label",
          "legend", "li", "link", "main", "menu", "meta", "nav", "noscript", "object", "ol", "optgroup",
          "option", "p", "param", "picture", "pre", "script", "section", "select", "source", "style",
          "summary", "svg", "table", "tbody", "td", "template", "textarea", "tfoot", "th", "thead",
          "title", "tr", "track", "ul", "video"})
      t.emplace(name, TagKind::block_tag);
    return t;
  }();
  return tags;
}

// Finds `needle` in `text` from `from` ignoring ASCII case; npos if absent.
size_t find_case_insensitive(std::string_view text, std::string_view needle, size_t from) {
  if (needle.empty() || text.size() < needle.size()) return std::string_view::npos;
  for (size_t i = from; i + needle.size() <= text.size(); ++i) {
    size_t j = 0;
    while (j < needle.size() && ascii_lower(text[i + j]) == needle[j]) ++j;
    if (j == needle.size()) return i;
  }
  return std::string_view::npos;
}

// Longest run scanned for a tag's closing '>': a real tag with attributes is far shorter, and the
// bound keeps a stray '<' in a long text from making the scan quadratic.
constexpr size_t kMaxTagLength = 4096;

struct Markup {
  size_t end = 0;       // one past the markup
  bool separates = false;  // replace by a space
};

// Recognizes markup starting at text[pos] == '<'; returns false for a literal '<'.
bool match_markup(std::string_view text, size_t pos, Markup& markup) {
  const size_t n = text.size();
  size_t i = pos + 1;
  if (i >= n) return false;
  if (text.compare(pos, 4, "<!--") == 0) {
    size_t close = text.find("-->", pos + 4);
    if (close == std::string_view::npos) return false;
    markup = {close + 3, false};
    return true;
  }
  if ((text[i] == '!' && i + 1 < n && is_ascii_alpha(text[i + 1])) || text[i] == '?') {
    size_t close = text.find('>', i);
    if (close == std::string_view::npos || close - pos > kMaxTagLength) return false;
    markup = {close + 1, true};
    return true;
  }
  bool closing = false;
  if (text[i] == '/') {
    closing = true;
    ++i;
  }
  size_t name_start = i;
  if (i >= n || !is_ascii_alpha(text[i])) return false;
  while (i < n && is_ascii_alnum(text[i]) && i - name_start < 16) ++i;
  std::string name;
  for (size_t k = name_start; k < i; ++k) name += ascii_lower(text[k]);
  auto found = known_tags().find(name);
  if (found == known_tags().end()) return false;
  if (i < n && !(text[i] == '>' || text[i] == '/' || is_ascii_space(text[i]))) return false;
  // Attributes: skip to the closing '>', honouring quoted values that may contain '>'.
  char quote = 0;
  size_t close = std::string_view::npos;
  for (size_t k = i; k < n && k - pos <= kMaxTagLength; ++k) {
    char c = text[k];
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      // Only an attribute value opens a quote ( name = "..." ); a lone apostrophe does not.
      size_t before = k;
      while (before > i && is_ascii_space(text[before - 1])) --before;
      if (before > i && text[before - 1] == '=') quote = c;
    } else if (c == '>') {
      close = k;
      break;
    } else if (c == '<') {
      return false;
    }
  }
  if (close == std::string_view::npos) return false;
  markup = {close + 1, found->second == TagKind::block_tag};
  bool self_closing = close > pos && text[close - 1] == '/';
  if (!closing && !self_closing && (name == "script" || name == "style")) {
    // Their contents are code, not text: drop everything up to the matching end tag.
    std::string end_tag = "</" + name;
    size_t end = find_case_insensitive(text, end_tag, markup.end);
    if (end == std::string_view::npos) {
      markup.end = n;
    } else {
      size_t gt = text.find('>', end);
      markup.end = gt == std::string_view::npos ? n : gt + 1;
    }
  }
  return true;
}

const std::unordered_map<std::string_view, char32_t>& named_entities() {
  static const std::unordered_map<std::string_view, char32_t> entities = [] {
    std::unordered_map<std::string_view, char32_t> e{
        {"quot", 34},     {"amp", 38},      {"apos", 39},    {"lt", 60},        {"gt", 62},
        {"OElig", 338},   {"oelig", 339},   {"Scaron", 352}, {"scaron", 353},   {"Yuml", 376},
        {"fnof", 402},    {"circ", 710},    {"tilde", 732},  {"ensp", 8194},    {"emsp", 8195},
        {"thinsp", 8201}, {"zwnj", 8204},   {"zwj", 8205},   {"lrm", 8206},     {"rlm", 8207},
        {"ndash", 8211},  {"mdash", 8212},  {"lsquo", 8216}, {"rsquo", 8217},   {"sbquo", 8218},
        {"ldquo", 8220},  {"rdquo", 8221},  {"bdquo", 8222}, {"dagger", 8224},  {"Dagger", 8225},
        {"bull", 8226},   {"hellip", 8230}, {"permil", 8240}, {"prime", 8242},  {"Prime", 8243},
        {"lsaquo", 8249}, {"rsaquo", 8250}, {"euro", 8364},  {"trade", 8482},   {"larr", 8592},
        {"uarr", 8593},   {"rarr", 8594},   {"darr", 8595},  {"harr", 8596},    {"minus", 8722},
        {"infin", 8734},  {"asymp", 8776},  {"ne", 8800},    {"le", 8804},      {"ge", 8805},
        {"hearts", 9829}, {"star", 9734},   {"check", 10003}};
    // The HTML 4 Latin-1 set, U+00A0..U+00FF in code point order.
    static const char* const latin1[96] = {
        "nbsp",   "iexcl",  "cent",   "pound",  "curren", "yen",    "brvbar", "sect",   "uml",
        "copy",   "ordf",   "laquo",  "not",    "shy",    "reg",    "macr",   "deg",    "plusmn",
        "sup2",   "sup3",   "acute",  "micro",  "para",   "middot", "cedil",  "sup1",   "ordm",
        "raquo",  "frac14", "frac12", "frac34", "iquest", "Agrave", "Aacute", "Acirc",  "Atilde",
        "Auml",   "Aring",  "AElig",  "Ccedil", "Egrave", "Eacute", "Ecirc",  "Euml",   "Igrave",
        "Iacute", "Icirc",  "Iuml",   "ETH",    "Ntilde", "Ograve", "Oacute", "Ocirc",  "Otilde",
        "Ouml",   "times",  "Oslash", "Ugrave", "Uacute", "Ucirc",  "Uuml",   "Yacute", "THORN",
        "szlig",  "agrave", "aacute", "acirc",  "atilde", "auml",   "aring",  "aelig",  "ccedil",
        "egrave", "eacute", "ecirc",  "euml",   "igrave", "iacute", "icirc",  "iuml",   "eth",
        "ntilde", "ograve", "oacute", "ocirc",  "otilde", "ouml",   "divide", "oslash", "ugrave",
        "uacute", "ucirc",  "uuml",   "yacute", "thorn",  "yuml"};
    for (int k = 0; k < 96; ++k) e.emplace(latin1[k], static_cast<char32_t>(0xA0 + k));
    return e;
  }();
  return entities;
}

// HTML maps numeric references in 0x80..0x9F to Windows-1252 (&#150; is an en dash).
constexpr std::array<char16_t, 32> kWindows1252 = {
    0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x8D,   0x017D, 0x8F,   0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178};

// Parses a character reference at text[pos] == '&'; returns its length (0: not a reference).
size_t match_entity(std::string_view text, size_t pos, char32_t& cp) {
  const size_t n = text.size();
  size_t i = pos + 1;
  if (i < n && text[i] == '#') {
    ++i;
    int base = 10;
    if (i < n && (text[i] == 'x' || text[i] == 'X')) {
      base = 16;
      ++i;
    }
    size_t digits_start = i;
    uint32_t value = 0;
    while (i < n && i - digits_start < 8) {
      char c = text[i];
      int d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (base == 16 && c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (base == 16 && c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else break;
      value = value * static_cast<uint32_t>(base) + static_cast<uint32_t>(d);
      ++i;
    }
    if (i == digits_start || i >= n || text[i] != ';') return 0;
    if (value == 0 || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) value = 0xFFFD;
    else if (value >= 0x80 && value <= 0x9F) value = kWindows1252[value - 0x80];
    cp = value;
    return i + 1 - pos;
  }
  size_t name_start = i;
  while (i < n && is_ascii_alnum(text[i]) && i - name_start < 32) ++i;
  if (i == name_start || i >= n || text[i] != ';') return 0;
  auto found = named_entities().find(text.substr(name_start, i - name_start));
  if (found == named_entities().end()) return 0;
  cp = found->second;
  return i + 1 - pos;
}

// Returns whether `text` is certainly NFC already: every code point lies in a range with no
// combining marks, no characters that compose with a preceding one and none that NFC replaces
// (Latin below U+0300, CJK Unified Ideographs, Hangul syllables, emoji). Most shop text passes,
// so utf8proc's decompose-and-recompose runs only where it can change something.
bool surely_nfc(std::string_view text) {
  const auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    if (bytes[i] < 0x80) {
      ++i;
      continue;
    }
    utf8proc_int32_t cp = -1;
    utf8proc_ssize_t len = utf8proc_iterate(bytes + i, static_cast<utf8proc_ssize_t>(n - i), &cp);
    if (len <= 0) return false;
    bool safe = cp < 0x300 || (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xAC00 && cp <= 0xD7A3) ||
                (cp >= 0x1F300 && cp <= 0x1FAFF);
    if (!safe) return false;
    i += static_cast<size_t>(len);
  }
  return true;
}

}  // namespace

std::string strip_html_tags(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    size_t lt = text.find('<', i);
    if (lt == std::string_view::npos) {
      out.append(text.substr(i));
      break;
    }
    out.append(text.substr(i, lt - i));
    Markup markup;
    if (match_markup(text, lt, markup)) {
      if (markup.separates) out += ' ';
      i = markup.end;
    } else {
      out += '<';
      i = lt + 1;
    }
  }
  return out;
}

std::string decode_html_entities(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    size_t amp = text.find('&', i);
    if (amp == std::string_view::npos) {
      out.append(text.substr(i));
      break;
    }
    out.append(text.substr(i, amp - i));
    char32_t cp = 0;
    size_t length = match_entity(text, amp, cp);
    if (length > 0) {
      unicode::append_utf8(out, cp);
      i = amp + length;
    } else {
      out += '&';
      i = amp + 1;
    }
  }
  return out;
}

std::string collapse_whitespace(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool pending_space = false;
  const auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    size_t length = 1;
    bool space;
    if (bytes[i] < 0x80) {
      space = is_ascii_space(static_cast<char>(bytes[i]));
    } else {
      utf8proc_int32_t cp = -1;
      utf8proc_ssize_t len = utf8proc_iterate(bytes + i, static_cast<utf8proc_ssize_t>(n - i), &cp);
      length = len > 0 ? static_cast<size_t>(len) : 1;
      space = len > 0 && unicode::is_whitespace(static_cast<char32_t>(cp));
    }
    if (space) {
      pending_space = !out.empty();
    } else {
      if (pending_space) out += ' ';
      pending_space = false;
      out.append(text.substr(i, length));
    }
    i += length;
  }
  return out;
}

std::string normalize_nfc(std::string_view text) {
  if (surely_nfc(text)) return std::string(text);
  return unicode::to_nfc(text);
}

std::string clean_text(std::string_view text) {
  // Plain text, the common case, goes straight to the last stage without copies.
  const bool markup = text.find('<') != std::string_view::npos || text.find('&') != std::string_view::npos;
  if (!markup && surely_nfc(text)) return collapse_whitespace(text);
  std::string current(text);
  if (current.find('<') != std::string::npos) current = strip_html_tags(current);
  if (current.find('&') != std::string::npos) current = decode_html_entities(current);
  if (!surely_nfc(current)) current = unicode::to_nfc(current);
  return collapse_whitespace(current);
}

std::string_view trim(std::string_view text) {
  size_t begin = 0, end = text.size();
  while (begin < end && is_ascii_space(text[begin])) ++begin;
  while (end > begin && is_ascii_space(text[end - 1])) --end;
  return text.substr(begin, end - begin);
}

}  // namespace recmodel::data
