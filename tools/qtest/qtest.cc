#include "tools/qtest/qtest.h"

#include <cinttypes>
#include <cstdio>

#include "tools/qtest/codec.h"

namespace mdevmig::qemu {
namespace {

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

Error protocol_error(std::string_view cmd, std::string what) {
  return Error::make(EPROTO, "qtest " + std::string(cmd), std::move(what));
}

Error with_context(Error e, const std::string& op) {
  e.add_context(op);
  return e;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A command's first word, for errors.
std::string_view verb(std::string_view line) { return line.substr(0, line.find(' ')); }

// Bulk transfers get time in proportion to their size (a 64 MiB read under nested TCG
// takes seconds).
std::chrono::milliseconds bulk_timeout(std::chrono::milliseconds base, std::size_t bytes) {
  return base + std::chrono::milliseconds(bytes / 4096);
}

}  // namespace

Result<QtestClient> QtestClient::connect(const Endpoint& at, std::chrono::milliseconds timeout) {
  // Replies to bulk reads are long lines.
  LineChannel ch = MDEVMIG_TRY(LineChannel::connect(at, deadline_in(timeout), 1u << 30));
  QtestClient c(std::move(ch));
  c.set_timeout(timeout);
  return c;
}

QtestClient::QtestClient(LineChannel channel) : channel_(std::move(channel)) {}

Result<bool> QtestClient::handle_async(std::string_view line) {
  if (line.substr(0, 4) != "IRQ ") return false;
  std::string_view rest = line.substr(4);
  bool raise;
  if (rest.substr(0, 6) == "raise ")
    raise = true;
  else if (rest.substr(0, 6) == "lower ")
    raise = false;
  else
    return protocol_error("IRQ", "malformed notification '" + std::string(line) + "'");
  auto n = parse_c_uint(trim(rest.substr(6)));
  if (!n || *n > 1u << 20)
    return protocol_error("IRQ", "bad line number in '" + std::string(line) + "'");
  IrqLine& l = irqs_[static_cast<int>(*n)];
  l.level = raise;
  ++(raise ? l.raises : l.lowers);
  return true;
}

Result<std::string> QtestClient::command(std::string_view line) { return command(line, timeout_); }

Result<std::string> QtestClient::command(std::string_view line, std::chrono::milliseconds timeout) {
  Deadline until = deadline_in(timeout);
  std::string text(line);
  text += '\n';
  const std::string op = "qtest " + std::string(verb(line));
  if (auto w = channel_.write_all(text, until); !w) return with_context(std::move(w).error(), op);
  for (;;) {
    auto reply = channel_.read_line(until);
    if (!reply) return with_context(std::move(reply).error(), op);
    if (MDEVMIG_TRY(handle_async(*reply))) continue;
    std::string_view r = *reply;
    if (r == "OK") return std::string();
    if (r.substr(0, 3) == "OK ") return std::string(trim(r.substr(3)));
    if (r.substr(0, 4) == "FAIL") return Error::make(EREMOTEIO, op, std::string(trim(r.substr(4))));
    return protocol_error(verb(line), "unexpected reply '" + std::string(r.substr(0, 120)) + "'");
  }
}

Result<uint64_t> QtestClient::read_value(std::string_view cmd, uint64_t addr, uint64_t max) {
  std::string reply = MDEVMIG_TRY(command(std::string(cmd) + " " + hex(addr)));
  auto v = parse_c_uint(reply);
  if (!v || *v > max) return protocol_error(cmd, "bad value '" + reply + "'");
  return *v;
}

Result<void> QtestClient::outb(uint16_t port, uint8_t value) {
  MDEVMIG_TRY(command("outb " + hex(port) + " " + hex(value)));
  return ok();
}
Result<void> QtestClient::outw(uint16_t port, uint16_t value) {
  MDEVMIG_TRY(command("outw " + hex(port) + " " + hex(value)));
  return ok();
}
Result<void> QtestClient::outl(uint16_t port, uint32_t value) {
  MDEVMIG_TRY(command("outl " + hex(port) + " " + hex(value)));
  return ok();
}
Result<uint8_t> QtestClient::inb(uint16_t port) {
  return static_cast<uint8_t>(MDEVMIG_TRY(read_value("inb", port, UINT8_MAX)));
}
Result<uint16_t> QtestClient::inw(uint16_t port) {
  return static_cast<uint16_t>(MDEVMIG_TRY(read_value("inw", port, UINT16_MAX)));
}
Result<uint32_t> QtestClient::inl(uint16_t port) {
  return static_cast<uint32_t>(MDEVMIG_TRY(read_value("inl", port, UINT32_MAX)));
}

Result<void> QtestClient::writeb(uint64_t addr, uint8_t value) {
  MDEVMIG_TRY(command("writeb " + hex(addr) + " " + hex(value)));
  return ok();
}
Result<void> QtestClient::writew(uint64_t addr, uint16_t value) {
  MDEVMIG_TRY(command("writew " + hex(addr) + " " + hex(value)));
  return ok();
}
Result<void> QtestClient::writel(uint64_t addr, uint32_t value) {
  MDEVMIG_TRY(command("writel " + hex(addr) + " " + hex(value)));
  return ok();
}
Result<void> QtestClient::writeq(uint64_t addr, uint64_t value) {
  MDEVMIG_TRY(command("writeq " + hex(addr) + " " + hex(value)));
  return ok();
}
Result<uint8_t> QtestClient::readb(uint64_t addr) {
  return static_cast<uint8_t>(MDEVMIG_TRY(read_value("readb", addr, UINT8_MAX)));
}
Result<uint16_t> QtestClient::readw(uint64_t addr) {
  return static_cast<uint16_t>(MDEVMIG_TRY(read_value("readw", addr, UINT16_MAX)));
}
Result<uint32_t> QtestClient::readl(uint64_t addr) {
  return static_cast<uint32_t>(MDEVMIG_TRY(read_value("readl", addr, UINT32_MAX)));
}
Result<uint64_t> QtestClient::readq(uint64_t addr) { return read_value("readq", addr, UINT64_MAX); }

Result<std::vector<uint8_t>> QtestClient::read(uint64_t addr, std::size_t len) {
  if (len == 0) return std::vector<uint8_t>();
  std::string reply =
      MDEVMIG_TRY(command("read " + hex(addr) + " " + hex(len), bulk_timeout(timeout_, 2 * len)));
  auto data = hex_decode(reply);
  if (!data || data->size() != len)
    return protocol_error("read", "expected " + std::to_string(len) + " bytes of hex, got " +
                                      std::to_string(reply.size()) + " characters");
  return std::move(*data);
}

Result<void> QtestClient::write(uint64_t addr, std::span<const uint8_t> data) {
  if (data.empty()) return ok();
  MDEVMIG_TRY(command("write " + hex(addr) + " " + hex(data.size()) + " 0x" + hex_encode(data),
                      bulk_timeout(timeout_, 2 * data.size())));
  return ok();
}

Result<std::vector<uint8_t>> QtestClient::b64read(uint64_t addr, std::size_t len) {
  if (len == 0) return std::vector<uint8_t>();
  std::string reply =
      MDEVMIG_TRY(command("b64read " + hex(addr) + " " + hex(len), bulk_timeout(timeout_, len)));
  auto data = base64_decode(reply);
  if (!data || data->size() != len)
    return protocol_error("b64read", "expected " + std::to_string(len) + " bytes of base64, got " +
                                         std::to_string(reply.size()) + " characters");
  return std::move(*data);
}

Result<void> QtestClient::b64write(uint64_t addr, std::span<const uint8_t> data) {
  if (data.empty()) return ok();
  MDEVMIG_TRY(command("b64write " + hex(addr) + " " + hex(data.size()) + " " + base64_encode(data),
                      bulk_timeout(timeout_, data.size())));
  return ok();
}

Result<void> QtestClient::memset(uint64_t addr, std::size_t len, uint8_t value) {
  if (len == 0) return ok();
  MDEVMIG_TRY(command("memset " + hex(addr) + " " + hex(len) + " " + hex(value),
                      bulk_timeout(timeout_, len)));
  return ok();
}

Result<void> QtestClient::irq_intercept_in(std::string_view qom_path) {
  if (qom_path.empty() || qom_path.find_first_of(" \n") != std::string_view::npos)
    return Error::make(EINVAL, "qtest irq_intercept_in",
                       "bad QOM path '" + std::string(qom_path) + "'");
  MDEVMIG_TRY(command("irq_intercept_in " + std::string(qom_path)));
  return ok();
}

Result<void> QtestClient::poll_irqs() {
  for (;;) {
    auto line = MDEVMIG_TRY(channel_.try_read_line());
    if (!line) return ok();
    if (!MDEVMIG_TRY(handle_async(*line)))
      return protocol_error("poll", "reply without a command: '" + line->substr(0, 120) + "'");
  }
}

IrqLine QtestClient::irq(int n) const {
  auto it = irqs_.find(n);
  return it == irqs_.end() ? IrqLine{} : it->second;
}

Result<void> QtestClient::wait_irq_raises(int n, uint64_t raises,
                                          std::chrono::milliseconds timeout) {
  Deadline until = deadline_in(timeout);
  for (;;) {
    if (irq(n).raises >= raises) return ok();
    auto line = channel_.read_line(until);
    if (!line)
      return with_context(std::move(line).error(), "qtest wait for IRQ " + std::to_string(n));
    if (!MDEVMIG_TRY(handle_async(*line)))
      return protocol_error("IRQ", "reply without a command: '" + line->substr(0, 120) + "'");
  }
}

}  // namespace mdevmig::qemu
