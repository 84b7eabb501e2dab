#include "tools/cli/args.h"

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>

namespace mdevmig::cli {

Args::Args(std::string usage, std::string description)
    : usage_(std::move(usage)), description_(std::move(description)) {}

void Args::flag(std::string name, std::string help) {
  Spec s;
  s.name = std::move(name);
  s.help = std::move(help);
  s.is_flag = true;
  specs_.push_back(std::move(s));
}

void Args::option(std::string name, std::string metavar, std::string help,
                  std::optional<std::string> fallback) {
  Spec s;
  s.name = std::move(name);
  s.metavar = std::move(metavar);
  s.help = std::move(help);
  s.fallback = std::move(fallback);
  specs_.push_back(std::move(s));
}

void Args::positional(std::string name, std::string help, bool required) {
  Spec s;
  s.name = std::move(name);
  s.help = std::move(help);
  s.is_positional = true;
  s.required = required;
  specs_.push_back(std::move(s));
}

const Args::Spec* Args::find(std::string_view name) const {
  for (const auto& s : specs_)
    if (s.name == name) return &s;
  return nullptr;
}

Result<void> Args::parse(std::span<const char* const> args) {
  auto usage_error = [](std::string what) { return Error::make(EINVAL, "usage", std::move(what)); };
  std::vector<const Spec*> positionals;
  for (const auto& s : specs_)
    if (s.is_positional) positionals.push_back(&s);
  size_t next_positional = 0;
  bool options_ended = false;

  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view a = args[i];
    if (a == "--" && !options_ended) {
      options_ended = true;
      continue;
    }
    if (options_ended) {
      if (next_positional >= positionals.size()) return usage_error("unexpected argument '" + std::string(a) + "'");
      values_.emplace_back(positionals[next_positional++]->name, std::string(a));
      continue;
    }
    if (a == "--help" || a == "-h") {
      help_ = true;
      std::fputs(this->usage().c_str(), stdout);
      return {};
    }
    if (a.size() > 2 && a.substr(0, 2) == "--") {
      std::string_view body = a.substr(2);
      std::optional<std::string> value;
      if (auto eq = body.find('='); eq != std::string_view::npos) {
        value = std::string(body.substr(eq + 1));
        body = body.substr(0, eq);
      }
      const Spec* s = find(body);
      if (s == nullptr || s->is_positional) return usage_error("unknown option --" + std::string(body));
      if (s->is_flag) {
        if (value) return usage_error("--" + s->name + " takes no value");
        values_.emplace_back(s->name, "1");
        continue;
      }
      if (!value) {
        if (i + 1 >= args.size()) return usage_error("--" + s->name + " needs a value (" + s->metavar + ")");
        value = args[++i];
      }
      values_.emplace_back(s->name, *value);
      continue;
    }
    if (next_positional >= positionals.size()) return usage_error("unexpected argument '" + std::string(a) + "'");
    values_.emplace_back(positionals[next_positional++]->name, std::string(a));
  }
  for (size_t i = next_positional; i < positionals.size(); ++i)
    if (positionals[i]->required) return usage_error("missing " + positionals[i]->name);
  return {};
}

bool Args::has(std::string_view name) const {
  for (const auto& [k, v] : values_)
    if (k == name) return true;
  return false;
}

std::optional<std::string> Args::get(std::string_view name) const {
  for (auto it = values_.rbegin(); it != values_.rend(); ++it)
    if (it->first == name) return it->second;
  if (const Spec* s = find(name)) return s->fallback;
  return std::nullopt;
}

Result<uint64_t> parse_size(std::string_view text) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p == text.data()) return Error::make(EINVAL, "parse size", "'" + std::string(text) + "'");
  std::string_view suffix(p, text.data() + text.size() - p);
  unsigned shift = 0;
  if (suffix == "K" || suffix == "k" || suffix == "KiB") shift = 10;
  else if (suffix == "M" || suffix == "MiB") shift = 20;
  else if (suffix == "G" || suffix == "GiB") shift = 30;
  else if (!suffix.empty()) return Error::make(EINVAL, "parse size", "unknown suffix in '" + std::string(text) + "'");
  if (shift && v > (UINT64_MAX >> shift)) return Error::make(ERANGE, "parse size", "'" + std::string(text) + "'");
  return v << shift;
}

Result<uint64_t> Args::get_size(std::string_view name) const {
  auto v = get(name);
  if (!v) return Error::make(EINVAL, "usage", "missing --" + std::string(name));
  return parse_size(*v);
}

Result<uint64_t> Args::get_uint(std::string_view name) const {
  auto v = get(name);
  if (!v) return Error::make(EINVAL, "usage", "missing --" + std::string(name));
  uint64_t out = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || p != v->data() + v->size())
    return Error::make(EINVAL, "usage", "--" + std::string(name) + " wants a number, got '" + *v + "'");
  return out;
}

Result<double> Args::get_double(std::string_view name) const {
  auto v = get(name);
  if (!v) return Error::make(EINVAL, "usage", "missing --" + std::string(name));
  char* end = nullptr;
  double d = std::strtod(v->c_str(), &end);
  if (end == v->c_str() || *end != '\0')
    return Error::make(EINVAL, "usage", "--" + std::string(name) + " wants a number, got '" + *v + "'");
  return d;
}

std::string Args::usage() const {
  std::string out = "usage: mdevmig " + usage_ + "\n\n" + description_ + "\n";
  bool any_pos = false, any_opt = false;
  for (const auto& s : specs_) any_pos |= s.is_positional, any_opt |= !s.is_positional;
  if (any_pos) {
    out += "\narguments:\n";
    for (const auto& s : specs_)
      if (s.is_positional) out += "  " + s.name + std::string(s.name.size() < 22 ? 22 - s.name.size() : 1, ' ') + s.help + "\n";
  }
  if (any_opt) {
    out += "\noptions:\n";
    for (const auto& s : specs_) {
      if (s.is_positional) continue;
      std::string left = "--" + s.name + (s.is_flag ? "" : " " + s.metavar);
      out += "  " + left + std::string(left.size() < 22 ? 22 - left.size() : 1, ' ') + s.help;
      if (s.fallback) out += " (default " + *s.fallback + ")";
      out += "\n";
    }
  }
  out += "  -h, --help            show this help\n";
  out += "  --                    end of the options: what follows is an argument\n";
  if (!epilogue_.empty()) out += epilogue_ + "\n";
  return out;
}

}  // namespace mdevmig::cli
