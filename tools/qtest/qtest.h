// A client of QEMU's qtest text protocol (-qtest unix:PATH): port and memory access as
// the guest CPU would do it, and interception of a device's IRQ inputs. Works without
// the qtest accelerator (Debian's QEMU has none): the VM runs under TCG with a HLT-only
// BIOS and the harness does the CPU's work.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "tools/qtest/line_channel.h"

namespace mdevmig::qemu {

/// What qtest reported about one intercepted IRQ line.
struct IrqLine {
  bool level = false;
  uint64_t raises = 0;
  uint64_t lowers = 0;
};

/// One qtest session. Every command waits for its reply until the timeout
/// (ETIMEDOUT); "FAIL ..." replies are EREMOTEIO with QEMU's text in the context;
/// malformed replies are EPROTO. "IRQ raise/lower N" lines, which QEMU sends at any
/// time after irq_intercept_in, are folded into per-line state as they arrive.
class QtestClient {
 public:
  static constexpr std::chrono::milliseconds kDefaultTimeout{10'000};

  /// Connects to a -qtest socket, retrying while QEMU is starting.
  [[nodiscard]] static Result<QtestClient> connect(
      const Endpoint& at, std::chrono::milliseconds timeout = kDefaultTimeout);
  explicit QtestClient(LineChannel channel);

  void set_timeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }

  [[nodiscard]] Result<void> outb(uint16_t port, uint8_t value);
  [[nodiscard]] Result<void> outw(uint16_t port, uint16_t value);
  [[nodiscard]] Result<void> outl(uint16_t port, uint32_t value);
  [[nodiscard]] Result<uint8_t> inb(uint16_t port);
  [[nodiscard]] Result<uint16_t> inw(uint16_t port);
  [[nodiscard]] Result<uint32_t> inl(uint16_t port);

  [[nodiscard]] Result<void> writeb(uint64_t addr, uint8_t value);
  [[nodiscard]] Result<void> writew(uint64_t addr, uint16_t value);
  [[nodiscard]] Result<void> writel(uint64_t addr, uint32_t value);
  [[nodiscard]] Result<void> writeq(uint64_t addr, uint64_t value);
  [[nodiscard]] Result<uint8_t> readb(uint64_t addr);
  [[nodiscard]] Result<uint16_t> readw(uint64_t addr);
  [[nodiscard]] Result<uint32_t> readl(uint64_t addr);
  [[nodiscard]] Result<uint64_t> readq(uint64_t addr);

  /// Bulk guest memory access: hex ("read"/"write") and base64 ("b64read"/"b64write").
  [[nodiscard]] Result<std::vector<uint8_t>> read(uint64_t addr, std::size_t len);
  [[nodiscard]] Result<void> write(uint64_t addr, std::span<const uint8_t> data);
  [[nodiscard]] Result<std::vector<uint8_t>> b64read(uint64_t addr, std::size_t len);
  [[nodiscard]] Result<void> b64write(uint64_t addr, std::span<const uint8_t> data);
  [[nodiscard]] Result<void> memset(uint64_t addr, std::size_t len, uint8_t value);

  /// Routes the GPIO inputs of the device at `qom_path` (e.g. "ioapic") to this
  /// session: they no longer reach the device; qtest reports their changes.
  [[nodiscard]] Result<void> irq_intercept_in(std::string_view qom_path);
  /// Reads IRQ notifications that have arrived, without waiting.
  [[nodiscard]] Result<void> poll_irqs();
  /// State of intercepted line `n` as last reported.
  [[nodiscard]] IrqLine irq(int n) const;
  [[nodiscard]] const std::map<int, IrqLine>& irqs() const { return irqs_; }
  /// Waits until line `n` has been raised at least `raises` times in total.
  [[nodiscard]] Result<void> wait_irq_raises(int n, uint64_t raises,
                                             std::chrono::milliseconds timeout);

  /// Sends one raw command line and returns what follows "OK" (trimmed).
  [[nodiscard]] Result<std::string> command(std::string_view line);
  /// The same with an explicit timeout (bulk transfers).
  [[nodiscard]] Result<std::string> command(std::string_view line,
                                            std::chrono::milliseconds timeout);

 private:
  // True if `line` was an IRQ notification (and has been applied).
  [[nodiscard]] Result<bool> handle_async(std::string_view line);
  [[nodiscard]] Result<uint64_t> read_value(std::string_view cmd, uint64_t addr, uint64_t max);

  LineChannel channel_;
  std::chrono::milliseconds timeout_ = kDefaultTimeout;
  std::map<int, IrqLine> irqs_;
};

}  // namespace mdevmig::qemu
