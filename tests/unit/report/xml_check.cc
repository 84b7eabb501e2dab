#include "tests/unit/report/xml_check.h"

#include <cstdint>

namespace mdevmig::report::testing {
namespace {

bool name_start(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':';
}
bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.'; }
bool space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}

  Document run() {
    if (auto e = check_chars(); !e.empty()) return fail(e);
    if (s_.substr(0, 5) == "<?xml") {
      const auto end = s_.find("?>");
      if (end == std::string_view::npos) return fail("unterminated XML declaration");
      i_ = end + 2;
    }
    skip_misc();
    if (s_.substr(i_, 9) == "<!DOCTYPE") {
      const auto end = s_.find('>', i_);
      if (end == std::string_view::npos) return fail("unterminated DOCTYPE");
      i_ = end + 1;
      skip_misc();
    }
    if (i_ >= s_.size() || s_[i_] != '<') return fail("no root element");
    if (!element(-1)) return std::move(doc_);  // with its error
    skip_misc();
    if (i_ != s_.size()) return fail("content after the root element");
    return std::move(doc_);
  }

 private:
  Document fail(const std::string& why) {
    bad(why);
    return std::move(doc_);
  }
  // The first error stands.
  bool bad(const std::string& why) {
    if (doc_.error.empty()) doc_.error = why + " at byte " + std::to_string(i_);
    return false;
  }

  // UTF-8, and none of the C0 controls but tab, newline and carriage return.
  std::string check_chars() {
    for (std::size_t k = 0; k < s_.size();) {
      const auto c = static_cast<unsigned char>(s_[k]);
      std::size_t n = c < 0x80             ? 1
                      : (c & 0xE0) == 0xC0 ? 2
                      : (c & 0xF0) == 0xE0 ? 3
                      : (c & 0xF8) == 0xF0 ? 4
                                           : 0;
      if (n == 0 || k + n > s_.size()) return "not UTF-8 at byte " + std::to_string(k);
      for (std::size_t j = 1; j < n; ++j)
        if ((static_cast<unsigned char>(s_[k + j]) & 0xC0) != 0x80)
          return "not UTF-8 at byte " + std::to_string(k);
      if (n == 1 && c < 0x20 && c != '\t' && c != '\n' && c != '\r')
        return "control character " + std::to_string(c) + " at byte " + std::to_string(k);
      k += n;
    }
    return {};
  }

  void skip_misc() {
    for (;;) {
      while (i_ < s_.size() && space(s_[i_])) ++i_;
      if (s_.substr(i_, 4) != "<!--") return;
      const auto end = s_.find("-->", i_ + 4);
      i_ = end == std::string_view::npos ? s_.size() : end + 3;
    }
  }

  bool name(std::string& out) {
    if (i_ >= s_.size() || !name_start(s_[i_])) return bad("expected a name");
    const std::size_t start = i_;
    while (i_ < s_.size() && name_char(s_[i_])) ++i_;
    out = std::string(s_.substr(start, i_ - start));
    return true;
  }

  // Character data up to `stop`, entities resolved; '<' is not allowed in it.
  bool chars(std::string_view stop, std::string& out) {
    while (i_ < s_.size() && stop.find(s_[i_]) == std::string_view::npos) {
      if (s_[i_] == '<') return bad("'<' in text or an attribute value");
      if (s_[i_] != '&') {
        out += s_[i_++];
        continue;
      }
      const auto semi = s_.find(';', i_);
      if (semi == std::string_view::npos || semi - i_ > 10) return bad("'&' that starts no entity");
      const std::string_view ent = s_.substr(i_ + 1, semi - i_ - 1);
      if (ent == "amp")
        out += '&';
      else if (ent == "lt")
        out += '<';
      else if (ent == "gt")
        out += '>';
      else if (ent == "quot")
        out += '"';
      else if (ent == "apos")
        out += '\'';
      else if (ent.size() > 1 && ent[0] == '#') {
        const bool hex = ent[1] == 'x';
        uint32_t v = 0;
        for (char c : ent.substr(hex ? 2 : 1)) {
          const int d = c >= '0' && c <= '9'          ? c - '0'
                        : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
                                                      : -1;
          if (d < 0) return bad("bad character reference");
          v = v * (hex ? 16 : 10) + static_cast<uint32_t>(d);
        }
        if (v < 0x20 && v != '\t' && v != '\n' && v != '\r')
          return bad("reference to a forbidden character");
        out += v < 0x80 ? std::string(1, static_cast<char>(v)) : std::string("?");
      } else {
        return bad("unknown entity &" + std::string(ent) + ";");
      }
      i_ = semi + 1;
    }
    return true;
  }

  bool element(int parent) {
    ++i_;  // '<'
    Element e;
    e.parent = parent;
    if (!name(e.name)) return false;
    for (;;) {
      const std::size_t before = i_;
      while (i_ < s_.size() && space(s_[i_])) ++i_;
      if (i_ >= s_.size()) return bad("unterminated tag <" + e.name);
      if (s_[i_] == '>' || s_.substr(i_, 2) == "/>") break;
      if (i_ == before) return bad("attributes must be separated by white space");
      std::string key, value;
      if (!name(key)) return false;
      while (i_ < s_.size() && space(s_[i_])) ++i_;
      if (i_ >= s_.size() || s_[i_] != '=') return bad("attribute " + key + " without a value");
      ++i_;
      while (i_ < s_.size() && space(s_[i_])) ++i_;
      if (i_ >= s_.size() || (s_[i_] != '"' && s_[i_] != '\''))
        return bad("attribute " + key + " not quoted");
      const char q = s_[i_++];
      if (!chars(std::string_view(&q, 1), value)) return false;
      if (i_ >= s_.size()) return bad("unterminated attribute " + key);
      ++i_;
      if (!e.attrs.emplace(key, value).second) return bad("attribute " + key + " twice");
    }
    const int self = static_cast<int>(doc_.elements.size());
    doc_.elements.push_back(e);
    if (s_[i_] == '/') {
      i_ += 2;
      return true;
    }
    ++i_;
    for (;;) {
      std::string text;
      if (!chars("<", text)) return false;
      doc_.elements[static_cast<std::size_t>(self)].text += text;
      if (i_ >= s_.size()) return bad("<" + e.name + "> is never closed");
      if (s_.substr(i_, 4) == "<!--") {
        skip_misc();
        continue;
      }
      if (s_.substr(i_, 2) == "</") {
        i_ += 2;
        std::string closing;
        if (!name(closing)) return false;
        if (closing != e.name) return bad("</" + closing + "> closes <" + e.name + ">");
        while (i_ < s_.size() && space(s_[i_])) ++i_;
        if (i_ >= s_.size() || s_[i_] != '>') return bad("unterminated closing tag");
        ++i_;
        return true;
      }
      if (!element(self)) return false;
    }
  }

  std::string_view s_;
  std::size_t i_ = 0;
  Document doc_;
};

bool has_class(const Element& e, std::string_view cls) {
  auto it = e.attrs.find("class");
  if (it == e.attrs.end()) return false;
  std::string_view list = it->second;
  for (std::size_t pos = 0; pos <= list.size();) {
    std::size_t end = list.find(' ', pos);
    if (end == std::string_view::npos) end = list.size();
    if (list.substr(pos, end - pos) == cls) return true;
    pos = end + 1;
  }
  return false;
}

}  // namespace

std::vector<const Element*> Document::find(std::string_view name, std::string_view cls,
                                           std::string_view within_attr,
                                           std::string_view within_value) const {
  std::vector<const Element*> out;
  for (const auto& e : elements) {
    if (!name.empty() && e.name != name) continue;
    if (!cls.empty() && !has_class(e, cls)) continue;
    bool inside = within_attr.empty();
    for (int p = e.parent; !inside && p >= 0; p = elements[static_cast<std::size_t>(p)].parent) {
      const auto& a = elements[static_cast<std::size_t>(p)].attrs;
      auto it = a.find(std::string(within_attr));
      inside = it != a.end() && it->second == within_value;
    }
    if (inside) out.push_back(&e);
  }
  return out;
}

std::string Document::all_text() const {
  std::string out;
  for (const auto& e : elements) {
    out += e.text;
    for (const auto& [k, v] : e.attrs) out += " " + v;
  }
  return out;
}

Document parse_xml(std::string_view xml) { return Reader(xml).run(); }

}  // namespace mdevmig::report::testing
