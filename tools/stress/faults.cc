#include "tools/stress/faults.h"

#include <array>

namespace mdevmig::stress {
namespace {

using F = FaultKind;
using S = Survivor;

// clang-format off
constexpr std::array<FaultSpec, 6> kFaults{{
  //  kind         name        site                     stream file   survivor         late   blind  default
  {F::kNone,     "none",     FaultSite::kNothing,     false, true,  S::kDestination, false, false, false},
  {F::kCancel,   "cancel",   FaultSite::kSourceRun,   false, true,  S::kSource,      true,  false, true},
  {F::kKillDst,  "kill-dst", FaultSite::kDestination, false, false, S::kSource,      false, false, true},
  {F::kKillSrc,  "kill-src", FaultSite::kSource,      false, true,  S::kNone,        false, false, true},
  {F::kCorrupt,  "corrupt",  FaultSite::kStream,      true,  true,  S::kSource,      false, true,  true},
  {F::kTruncate, "truncate", FaultSite::kStream,      true,  true,  S::kSource,      false, false, true},
}};
// clang-format on

constexpr bool in_enum_order() {
  for (std::size_t i = 0; i < kFaults.size(); ++i)
    if (static_cast<std::size_t>(kFaults[i].kind) != i) return false;
  return true;
}
static_assert(in_enum_order(), "the fault table lists every FaultKind once, in enum order");
static_assert(static_cast<std::size_t>(F::kTruncate) + 1 == kFaults.size(),
              "a new FaultKind needs its row");

}  // namespace

const char* survivor_name(Survivor s) {
  switch (s) {
    case Survivor::kDestination:
      return "destination";
    case Survivor::kSource:
      return "source";
    case Survivor::kNone:
      return "none";
  }
  return "?";
}

std::span<const FaultSpec> fault_table() { return kFaults; }

const FaultSpec& fault_spec(FaultKind f) { return kFaults.at(static_cast<std::size_t>(f)); }

const char* fault_name(FaultKind f) {
  const auto i = static_cast<std::size_t>(f);
  return i < kFaults.size() ? kFaults[i].name : "?";
}

Result<FaultKind> parse_fault(std::string_view text) {
  for (const FaultSpec& s : kFaults)
    if (text == s.name) return s.kind;
  std::vector<FaultKind> all;
  all.reserve(kFaults.size());
  for (const FaultSpec& s : kFaults) all.push_back(s.kind);
  return Error::make(EINVAL, "parse fault",
                     "'" + std::string(text) + "' (want " + fault_list_text(all, ", ") + ")");
}

Result<std::vector<FaultKind>> parse_fault_list(std::string_view text) {
  std::vector<FaultKind> out;
  for (std::size_t pos = 0; pos <= text.size();) {
    std::size_t end = text.find(',', pos);
    if (end == std::string_view::npos) end = text.size();
    const FaultKind f = MDEVMIG_TRY(parse_fault(text.substr(pos, end - pos)));
    if (f != FaultKind::kNone) out.push_back(f);
    pos = end + 1;
  }
  return out;
}

std::string fault_list_text(std::span<const FaultKind> faults, std::string_view separator) {
  std::string s;
  for (FaultKind f : faults) {
    if (!s.empty()) s += separator;
    s += fault_name(f);
  }
  return s;
}

std::vector<std::string> fault_names(std::span<const FaultKind> faults) {
  std::vector<std::string> out;
  for (FaultKind f : faults) out.emplace_back(fault_name(f));
  return out;
}

std::vector<FaultKind> default_faults() {
  std::vector<FaultKind> out;
  for (const FaultSpec& s : kFaults)
    if (s.by_default) out.push_back(s.kind);
  return out;
}

std::vector<FaultKind> injectable_faults() {
  std::vector<FaultKind> out;
  for (const FaultSpec& s : kFaults)
    if (s.kind != FaultKind::kNone) out.push_back(s.kind);
  return out;
}

Survivor expected_survivor(FaultKind f) { return fault_spec(f).survivor; }

bool survivor_acceptable(FaultKind f, Survivor got, bool blind) {
  const FaultSpec& s = fault_spec(f);
  if (got == s.survivor) return true;
  return got == Survivor::kDestination && (s.may_come_late || (blind && s.blind_may_pass));
}

bool destination_must_refuse(FaultKind f) {
  const FaultSpec& s = fault_spec(f);
  return s.survivor == Survivor::kSource && !s.may_come_late;
}

}  // namespace mdevmig::stress
