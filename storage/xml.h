// A small XML reader for S3 responses (ListObjectsV2, ListParts, errors): elements, text and
// the five predefined entities plus numeric references. Attributes are skipped.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace recmodel::storage {

struct XmlNode {
  std::string name;  // local name, namespace prefix dropped
  std::string text;  // character data directly inside the element
  std::vector<XmlNode> children;

  // Returns the first child called `child`, or nullptr.
  const XmlNode* find(std::string_view child) const;
  // Returns the text of the first child called `child`, or "".
  std::string child_text(std::string_view child) const;
  // Returns every child called `child`.
  std::vector<const XmlNode*> all(std::string_view child) const;
};

// Parses a document and returns its root element; throws RemoteError naming `what` when malformed.
XmlNode parse_xml(std::string_view document, std::string_view what);

// Returns `text` with &, <, >, " and ' escaped for an XML document.
std::string xml_escape(std::string_view text);

}  // namespace recmodel::storage
