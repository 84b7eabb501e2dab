// The options several subcommands share whose value is one word of a few: each is
// declared and checked here once, so its spelling in --help ("auto|v2|v1") and its usage
// error ("--channel: wants auto, v2 or v1, got 'x'", exit 2) are the same everywhere.
#pragma once

#include <string>

#include "base/result.h"
#include "migration/engine/channel.h"
#include "tools/cli/args.h"
#include "tools/qemu/guest.h"
#include "tools/qemu/process.h"
#include "tools/stress/faults.h"

namespace mdevmig::cli {

/// --channel auto|v2|v1 (default auto): the engine's migration interface.
void declare_channel(Args& a, std::string help);
[[nodiscard]] Result<engine::ChannelPreference> get_channel(const Args& a);

/// --protocol auto|v1|v2 (default auto): the VFIO migration a QEMU speaks.
void declare_protocol(Args& a, std::string help);
[[nodiscard]] Result<qemu::VfioProtocol> get_protocol(const Args& a);

/// --irq intx|msi (default intx): how the device interrupts the guest.
void declare_irq(Args& a, std::string help);
[[nodiscard]] Result<qemu::IrqMode> get_irq(const Args& a);

/// --fault KIND (default none): one fault of the fault table (tools/stress/faults.h); its
/// help is `help` followed by the table's names.
void declare_fault(Args& a, const std::string& help);
[[nodiscard]] Result<stress::FaultKind> get_fault(const Args& a);

}  // namespace mdevmig::cli
