#include "tools/cli/choice_options.h"

#include <array>
#include <string_view>
#include <vector>

namespace mdevmig::cli {
namespace {

// The words in the order --help and the usage errors list them; each is parsed by its
// component's own parser, which knows what it means.
constexpr std::array<std::string_view, 3> kChannels{"auto", "v2", "v1"};
constexpr std::array<std::string_view, 3> kProtocols{"auto", "v1", "v2"};
constexpr std::array<std::string_view, 2> kIrqModes{"intx", "msi"};

std::vector<std::string_view> fault_words() {
  std::vector<std::string_view> words;
  for (const stress::FaultSpec& s : stress::fault_table()) words.emplace_back(s.name);
  return words;
}

// The value of --name checked against `words`, then given to `parse`.
template <typename T>
Result<T> choice(const Args& a, std::string_view name, std::span<const std::string_view> words,
                 Result<T> (*parse)(std::string_view)) {
  MDEVMIG_TRY(a.get_choice(name, words));
  return parse(*a.get(name));
}

}  // namespace

void declare_channel(Args& a, std::string help) {
  a.option("channel", choice_metavar(kChannels), std::move(help), std::string(kChannels[0]));
}

Result<engine::ChannelPreference> get_channel(const Args& a) {
  return choice(a, "channel", kChannels, &engine::parse_channel_preference);
}

void declare_protocol(Args& a, std::string help) {
  a.option("protocol", choice_metavar(kProtocols), std::move(help), std::string(kProtocols[0]));
}

Result<qemu::VfioProtocol> get_protocol(const Args& a) {
  return choice(a, "protocol", kProtocols, &qemu::parse_vfio_protocol);
}

void declare_irq(Args& a, std::string help) {
  a.option("irq", choice_metavar(kIrqModes), std::move(help), std::string(kIrqModes[0]));
}

Result<qemu::IrqMode> get_irq(const Args& a) {
  return choice(a, "irq", kIrqModes, &qemu::parse_irq_mode);
}

void declare_fault(Args& a, const std::string& help) {
  const std::vector<std::string_view> words = fault_words();
  std::string names;
  for (std::string_view w : words) names += (names.empty() ? "" : ", ") + std::string(w);
  a.option("fault", "KIND", help + names,
           std::string(stress::fault_name(stress::FaultKind::kNone)));
}

Result<stress::FaultKind> get_fault(const Args& a) {
  const std::vector<std::string_view> words = fault_words();
  return choice(a, "fault", std::span<const std::string_view>(words), &stress::parse_fault);
}

}  // namespace mdevmig::cli
