// A small XML reader for the report's tests: it checks that a document is well-formed
// (one root, tags nested and closed, attributes quoted and unique, entities known,
// UTF-8 without the control characters XML forbids) and keeps its elements so a test
// can find them. Enough for what the renderer writes; not a general parser (no CDATA,
// no internal DTD subset).
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace mdevmig::report::testing {

struct Element {
  std::string name;
  std::map<std::string, std::string> attrs;  ///< values with entities resolved
  std::string text;                          ///< character data directly inside it
  int parent = -1;                           ///< index in Document::elements
};

struct Document {
  std::string error;  ///< empty: well-formed
  std::vector<Element> elements;

  [[nodiscard]] bool ok() const { return error.empty(); }
  /// Elements named `name` (any when empty) whose class list has `cls` (any when
  /// empty), inside an element whose attribute `within_attr` is `within_value` (anywhere
  /// when empty).
  [[nodiscard]] std::vector<const Element*> find(std::string_view name, std::string_view cls,
                                                 std::string_view within_attr = {},
                                                 std::string_view within_value = {}) const;
  [[nodiscard]] std::size_t count(std::string_view name, std::string_view cls,
                                  std::string_view within_attr = {},
                                  std::string_view within_value = {}) const {
    return find(name, cls, within_attr, within_value).size();
  }
  /// All character data and attribute values in the document, entities resolved.
  [[nodiscard]] std::string all_text() const;
};

/// Reads `xml`; Document::error says where it is not well-formed.
[[nodiscard]] Document parse_xml(std::string_view xml);

}  // namespace mdevmig::report::testing
