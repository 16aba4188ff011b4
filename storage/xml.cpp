#include "storage/xml.h"

#include <cstdlib>

#include "common/error.h"

namespace recmodel::storage {

const XmlNode* XmlNode::find(std::string_view child) const {
  for (const auto& node : children)
    if (node.name == child) return &node;
  return nullptr;
}

std::string XmlNode::child_text(std::string_view child) const {
  const XmlNode* node = find(child);
  return node ? node->text : std::string();
}

std::vector<const XmlNode*> XmlNode::all(std::string_view child) const {
  std::vector<const XmlNode*> out;
  for (const auto& node : children)
    if (node.name == child) out.push_back(&node);
  return out;
}

namespace {

class Parser {
 public:
  Parser(std::string_view text, std::string_view what) : text_(text), what_(what) {}

  XmlNode document() {
    skip_misc();
    if (!starts("<")) bad("no root element");
    XmlNode root = element();
    skip_misc();
    if (pos_ != text_.size()) bad("content after the root element");
    return root;
  }

 private:
  [[noreturn]] void bad(const std::string& why) {
    fail<RemoteError>("{}: malformed XML in the server's response ({} at byte {})", what_, why, pos_);
  }
  bool starts(std::string_view s) const { return text_.substr(pos_, s.size()) == s; }
  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' || text_[pos_] == '\r' ||
                                   text_[pos_] == '\t'))
      ++pos_;
  }
  void skip_until(std::string_view end) {
    size_t at = text_.find(end, pos_);
    if (at == std::string_view::npos) bad("unterminated markup");
    pos_ = at + end.size();
  }
  // Skips whitespace, the XML declaration, comments, processing instructions and a doctype.
  void skip_misc() {
    for (;;) {
      skip_space();
      if (starts("<?")) skip_until("?>");
      else if (starts("<!--")) skip_until("-->");
      else if (starts("<!DOCTYPE")) skip_until(">");
      else return;
    }
  }
  std::string name() {
    size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != '>' && text_[pos_] != '/' && text_[pos_] != ' ' &&
           text_[pos_] != '\t' && text_[pos_] != '\n' && text_[pos_] != '\r')
      ++pos_;
    if (pos_ == start) bad("empty element name");
    std::string full(text_.substr(start, pos_ - start));
    size_t colon = full.find(':');
    return colon == std::string::npos ? full : full.substr(colon + 1);
  }
  void append_entity(std::string& out) {
    size_t end = text_.find(';', pos_);
    if (end == std::string_view::npos || end - pos_ > 12) bad("bad entity");
    std::string_view entity = text_.substr(pos_ + 1, end - pos_ - 1);
    pos_ = end + 1;
    if (entity == "amp") out += '&';
    else if (entity == "lt") out += '<';
    else if (entity == "gt") out += '>';
    else if (entity == "quot") out += '"';
    else if (entity == "apos") out += '\'';
    else if (!entity.empty() && entity[0] == '#') {
      std::string digits(entity.substr(1));
      char* end_ptr = nullptr;
      unsigned long code = digits.size() > 1 && (digits[0] == 'x' || digits[0] == 'X')
                               ? std::strtoul(digits.c_str() + 1, &end_ptr, 16)
                               : std::strtoul(digits.c_str(), &end_ptr, 10);
      if (!end_ptr || *end_ptr || code == 0 || code > 0x10FFFF) bad("bad character reference");
      // UTF-8 encode.
      if (code < 0x80) out += static_cast<char>(code);
      else if (code < 0x800) {
        out += static_cast<char>(0xC0 | (code >> 6));
        out += static_cast<char>(0x80 | (code & 0x3F));
      } else if (code < 0x10000) {
        out += static_cast<char>(0xE0 | (code >> 12));
        out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (code & 0x3F));
      } else {
        out += static_cast<char>(0xF0 | (code >> 18));
        out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (code & 0x3F));
      }
    } else {
      bad("unknown entity &" + std::string(entity) + ";");
    }
  }
  XmlNode element() {
    if (++depth_ > 64) bad("elements nested too deep");
    ++pos_;  // '<'
    XmlNode node;
    node.name = name();
    // Attributes are not needed by any S3 response we read.
    for (;;) {
      if (pos_ >= text_.size()) bad("unterminated start tag");
      char c = text_[pos_];
      if (c == '"' || c == '\'') {
        size_t end = text_.find(c, pos_ + 1);
        if (end == std::string_view::npos) bad("unterminated attribute");
        pos_ = end + 1;
      } else if (c == '>' || c == '/') {
        break;
      } else {
        ++pos_;
      }
    }
    if (starts("/>")) {
      pos_ += 2;
      --depth_;
      return node;
    }
    ++pos_;  // '>'
    for (;;) {
      if (pos_ >= text_.size()) bad("unterminated element <" + node.name + ">");
      if (starts("</")) {
        pos_ += 2;
        std::string closing = name();
        skip_space();
        if (closing != node.name || !starts(">")) bad("mismatched end tag </" + closing + ">");
        ++pos_;
        --depth_;
        return node;
      }
      if (starts("<![CDATA[")) {
        size_t end = text_.find("]]>", pos_);
        if (end == std::string_view::npos) bad("unterminated CDATA");
        node.text += text_.substr(pos_ + 9, end - pos_ - 9);
        pos_ = end + 3;
      } else if (starts("<!--")) {
        skip_until("-->");
      } else if (starts("<?")) {
        skip_until("?>");
      } else if (text_[pos_] == '<') {
        node.children.push_back(element());
      } else if (text_[pos_] == '&') {
        append_entity(node.text);
      } else {
        node.text += text_[pos_++];
      }
    }
  }

  std::string_view text_;
  std::string_view what_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

XmlNode parse_xml(std::string_view document, std::string_view what) { return Parser(document, what).document(); }

std::string xml_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace recmodel::storage
