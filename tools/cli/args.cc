#include "tools/cli/args.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
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

Error usage_error(std::string_view flag, std::string what) {
  return Error::make_verdict(EINVAL, "usage", std::string(flag) + ": " + std::move(what));
}

Result<void> Args::parse(std::span<const char* const> args) {
  auto usage_error = [](std::string what) {
    return Error::make_verdict(EINVAL, "usage", std::move(what));
  };
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
      if (next_positional >= positionals.size())
        return usage_error("unexpected argument '" + std::string(a) + "'");
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
      if (s == nullptr || s->is_positional)
        return usage_error("unknown option --" + std::string(body));
      if (s->is_flag) {
        if (value) return usage_error("--" + s->name + " takes no value");
        values_.emplace_back(s->name, "1");
        continue;
      }
      if (!value) {
        if (i + 1 >= args.size())
          return usage_error("--" + s->name + " needs a value (" + s->metavar + ")");
        value = args[++i];
      }
      values_.emplace_back(s->name, *value);
      continue;
    }
    if (next_positional >= positionals.size())
      return usage_error("unexpected argument '" + std::string(a) + "'");
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
  // The last one given wins.
  const auto it = std::find_if(values_.rbegin(), values_.rend(),
                               [&](const auto& kv) { return kv.first == name; });
  if (it != values_.rend()) return it->second;
  if (const Spec* s = find(name)) return s->fallback;
  return std::nullopt;
}

namespace {

// "16M" for whole MiB and so on, else the number.
std::string size_text(uint64_t v) {
  static const char kUnits[] = {'T', 'G', 'M', 'K'};
  for (int i = 0; i < 4; ++i) {
    const unsigned shift = 40 - 10 * i;
    if (v != 0 && v % (uint64_t{1} << shift) == 0) return std::to_string(v >> shift) + kUnits[i];
  }
  return std::to_string(v);
}

// Decimal or 0x hex digits at the start of `text`; the rest is left in `text`.
std::optional<uint64_t> parse_digits(std::string_view& text) {
  int base = 10;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    base = 16;
    text.remove_prefix(2);
  }
  uint64_t v = 0;
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v, base);
  if (ec != std::errc() || p == text.data()) return std::nullopt;
  text.remove_prefix(static_cast<size_t>(p - text.data()));
  return v;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

}  // namespace

Result<uint64_t> parse_size(std::string_view text) {
  const std::string quoted = "'" + std::string(text) + "'";
  std::string_view rest = text;
  const auto v = parse_digits(rest);
  if (!v)
    return Error::make_verdict(EINVAL, "usage",
                               quoted + " is not a size (e.g. 4096, 0x1000, 64K, 32M, 1G)");
  const std::string suffix = lower(rest);
  unsigned shift = 0;
  if (suffix == "k" || suffix == "kib")
    shift = 10;
  else if (suffix == "m" || suffix == "mib")
    shift = 20;
  else if (suffix == "g" || suffix == "gib")
    shift = 30;
  else if (suffix == "t" || suffix == "tib")
    shift = 40;
  else if (!suffix.empty())
    return Error::make_verdict(EINVAL, "usage", quoted + ": unknown suffix (want K, M, G or T)");
  if (shift && *v > (UINT64_MAX >> shift))
    return Error::make_verdict(ERANGE, "usage", quoted + " is too large");
  return *v << shift;
}

Result<uint64_t> Args::get_size(std::string_view name, uint64_t min, uint64_t max) const {
  const std::string flag = "--" + std::string(name);
  auto v = get(name);
  if (!v) return usage_error(flag, "missing");
  auto n = parse_size(*v);
  if (!n.ok())
    return usage_error(flag, "wants a size (e.g. 4096, 0x1000, 64K, 32M, 1G), got '" + *v + "'");
  if (*n < min || *n > max)
    return usage_error(flag, "wants a size from " + size_text(min) + " to " + size_text(max) +
                                 ", got '" + *v + "'");
  return *n;
}

Result<uint64_t> Args::get_address(std::string_view name, uint64_t align) const {
  const std::string flag = "--" + std::string(name);
  auto v = get(name);
  if (!v) return usage_error(flag, "missing");
  auto n = parse_size(*v);
  if (!n.ok())
    return usage_error(flag, "wants an address (e.g. 0x40000000 or 1G), got '" + *v + "'");
  if (align > 1 && *n % align != 0)
    return usage_error(flag,
                       "wants an address aligned to " + size_text(align) + ", got '" + *v + "'");
  return *n;
}

Result<uint64_t> Args::get_uint(std::string_view name, uint64_t min, uint64_t max) const {
  const std::string flag = "--" + std::string(name);
  auto v = get(name);
  if (!v) return usage_error(flag, "missing");
  std::string_view rest = *v;
  const auto n = parse_digits(rest);
  const std::string range =
      max == UINT64_MAX && min == 0
          ? std::string("a whole number")
          : "a whole number from " + std::to_string(min) + " to " + std::to_string(max);
  if (!n || !rest.empty() || *n < min || *n > max)
    return usage_error(flag, "wants " + range + ", got '" + *v + "'");
  return *n;
}

Result<double> Args::get_double(std::string_view name, double min, double max, bool open) const {
  const std::string flag = "--" + std::string(name);
  auto v = get(name);
  if (!v) return usage_error(flag, "missing");
  char* end = nullptr;
  const double d = v->empty() ? NAN : std::strtod(v->c_str(), &end);
  const bool in_range = open ? (d > min && d < max) : (d >= min && d <= max);
  if (v->empty() || end == v->c_str() || *end != '\0' || !std::isfinite(d) || !in_range) {
    char range[96];
    std::snprintf(range, sizeof(range),
                  open ? "a number between %g and %g (exclusive)" : "a number from %g to %g", min,
                  max);
    return usage_error(flag, std::string("wants ") + range + ", got '" + *v + "'");
  }
  return d;
}

std::string choice_text(std::span<const std::string_view> words) {
  std::string out;
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (i > 0) out += i + 1 == words.size() ? " or " : ", ";
    out += words[i];
  }
  return out;
}

std::string choice_metavar(std::span<const std::string_view> words) {
  std::string out;
  for (std::string_view w : words) {
    if (!out.empty()) out += '|';
    out += w;
  }
  return out;
}

Result<std::size_t> Args::get_choice(std::string_view name,
                                     std::span<const std::string_view> words) const {
  const std::string flag = "--" + std::string(name);
  auto v = get(name);
  if (!v) return usage_error(flag, "missing");
  for (std::size_t i = 0; i < words.size(); ++i)
    if (*v == words[i]) return i;
  return usage_error(flag, "wants " + choice_text(words) + ", got '" + *v + "'");
}

std::string Args::usage() const {
  std::string out = "usage: mdevmig " + usage_ + "\n\n" + description_ + "\n";
  bool any_pos = false, any_opt = false;
  for (const auto& s : specs_) any_pos |= s.is_positional, any_opt |= !s.is_positional;
  if (any_pos) {
    out += "\narguments:\n";
    for (const auto& s : specs_)
      if (s.is_positional)
        out += "  " + s.name + std::string(s.name.size() < 22 ? 22 - s.name.size() : 1, ' ') +
               s.help + "\n";
  }
  // -h and -- below are options of every command, so the heading is always there.
  out += "\noptions:\n";
  if (any_opt) {
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
