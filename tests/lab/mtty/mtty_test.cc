// Lab group "mtty": the `mdevmig` CLI against a VFIO device it did not write, the
// kernel's mtty sample (samples/vfio-mdev/mtty.c, built for the profile's kernel by
// build-mtty.sh). Each mtty port is an emulated 16550 UART behind an I/O BAR; its v2
// migration (STOP_COPY, P2P and PRE_COPY) carries every port's registers, divisor latch,
// FIFO mode and the bytes in its loop-back FIFO. The test programs that state through
// VFIO, runs the CLI (save, inspect, restore, migrate with and without pre-copy, on one
// host and over loopback TCP) and reads the state back from the destination through
// VFIO. Devices are passed to the CLI as fd:N: this process keeps them open, as a VMM
// would.
#include <fcntl.h>
#include <linux/serial_reg.h>
#include <linux/vfio.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/process.h"
#include "common/sysfs.h"
#include "migration/vfio/mdev.h"
#include "migration/vfio/mig_state.h"

#ifndef MDEVMIG_BIN
#error "MDEVMIG_BIN (the mdevmig binary) must be defined"
#endif
#ifndef MTTY_KMOD_DIR
#error "MTTY_KMOD_DIR (where build-mtty.sh put mtty.ko) must be defined"
#endif

namespace mdevmig::lab {
namespace {

using namespace std::chrono_literals;
using vfio::MigState;

// ---- the mtty module ------------------------------------------------------------------------

// Loads mtty.ko for the running kernel before the tests and unloads it after them (which
// must work: every instance is gone by then). run-group.sh has loaded vfio and mdev.
class MttyModule : public testing::Environment {
 public:
  void SetUp() override {
    if (!in_lab()) return;
    utsname u{};
    ASSERT_EQ(::uname(&u), 0);
    const std::string ko = std::string(MTTY_KMOD_DIR) + "/" + u.release + "/mtty.ko";
    const int fd = ::open(ko.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << ko << ": " << std::strerror(errno)
                     << " (cmake --build <dir> --target mtty_kmod)";
    const long rc = ::syscall(SYS_finit_module, fd, "", 0);
    const int err = errno;
    ::close(fd);
    ASSERT_EQ(rc, 0) << "loading " << ko << ": " << std::strerror(err);
    loaded_ = true;
  }
  void TearDown() override {
    if (!loaded_) return;
    EXPECT_EQ(::syscall(SYS_delete_module, "mtty", O_NONBLOCK), 0)
        << "unloading mtty: " << std::strerror(errno);
  }

 private:
  bool loaded_ = false;
};

[[maybe_unused]] testing::Environment* const kMttyModule =
    testing::AddGlobalTestEnvironment(new MttyModule);

// ---- instances --------------------------------------------------------------------------------

// An mtty instance of type mtty-<ports> (1 or 2 ports), opened through VFIO; removed
// after its device is closed (members are destroyed in reverse order).
class Mtty {
 public:
  explicit Mtty(int ports) : ports_(ports), uuid_(random_uuid()) {
    const std::string type =
        "/sys/class/mdev_bus/mtty/mdev_supported_types/mtty-" + std::to_string(ports);
    if (const int rc = write_file(type + "/create", uuid_); rc != 0) {
      ADD_FAILURE() << "creating an mtty-" << ports << " instance: errno " << -rc;
      uuid_.clear();
      return;
    }
    auto m = vfio::open_mdev(uuid_);
    if (!m.ok()) {
      ADD_FAILURE() << m.error().message();
      return;
    }
    m_.emplace(std::move(m.value()));
  }
  ~Mtty() {
    m_.reset();
    if (!uuid_.empty()) write_file("/sys/bus/mdev/devices/" + uuid_ + "/remove", "1");
  }
  Mtty(const Mtty&) = delete;
  Mtty& operator=(const Mtty&) = delete;

  bool ok() const { return m_.has_value(); }
  int ports() const { return ports_; }
  const vfio::Device& dev() const { return m_->device; }
  std::string fd_arg() const { return "fd:" + std::to_string(dev().fd()); }
  MigState state() const {
    auto s = dev().mig_state();
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message());
    return s.ok() ? *s : MigState::kError;
  }

 private:
  int ports_;
  std::string uuid_;
  std::optional<vfio::OpenMdev> m_;
};

// ---- the UART, through VFIO ---------------------------------------------------------------------

// Port p is BAR p, 8 bytes of 16550 registers (offsets from linux/serial_reg.h). Values
// read are unsigned (not uint8_t) so that failures print numbers, not characters.
unsigned in(const vfio::Device& d, int port, uint32_t reg) {
  auto r = d.read_as<uint8_t>(VFIO_PCI_BAR0_REGION_INDEX + port, reg);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
  return r.ok() ? *r : 0;
}
void out(const vfio::Device& d, int port, uint32_t reg, uint8_t v) {
  auto r = d.write_as<uint8_t>(VFIO_PCI_BAR0_REGION_INDEX + port, reg, v);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
}

// What a test programs into one port before the migration.
struct PortSetup {
  uint8_t fcr;                // FIFO enable (16 bytes deep) or not (1 byte)
  uint8_t lcr;                // line control, without DLAB
  uint16_t divisor;           // baud rate divisor latch
  bool dlab_at_switch;        // DLAB still set while migrating (the divisor is readable)
  uint8_t ier, mcr, scr;      // interrupt enable, modem control, scratch
  std::vector<uint8_t> sent;  // bytes written to TX: the FIFO loops them back to RX

  size_t depth() const { return (fcr & UART_FCR_ENABLE_FIFO) ? 16 : 1; }
  // What RX gives back: what fitted in the FIFO; the rest overran it.
  std::vector<uint8_t> fifo() const {
    return {sent.begin(),
            sent.begin() + static_cast<std::ptrdiff_t>(std::min(sent.size(), depth()))};
  }
  bool overrun() const { return sent.size() > depth(); }
};

// Two ports programmed differently: port 0 with a deep FIFO and the divisor latch
// selected at the switch; port 1 with a 1-byte FIFO that overran, auto flow control
// (its CTS then depends on the FIFO depth) and DLAB clear.
const PortSetup kPorts[2] = {
    {.fcr = UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT | UART_FCR_TRIGGER_8,
     .lcr = UART_LCR_WLEN8 | UART_LCR_PARITY | UART_LCR_EPAR,
     .divisor = 0x030c,
     .dlab_at_switch = true,
     .ier = UART_IER_RDI | UART_IER_RLSI | UART_IER_MSI,
     .mcr = UART_MCR_DTR | UART_MCR_RTS | UART_MCR_OUT2,
     .scr = 0xa5,
     .sent = {'m', 'd', 'e', 'v', 'm', 'i', 'g', 0x00, 0xff, 0x7f, 0x80, 0x55, 0x0d}},
    {.fcr = 0,
     .lcr = UART_LCR_WLEN7 | UART_LCR_STOP,
     .divisor = 0x0001,
     .dlab_at_switch = false,
     .ier = UART_IER_RDI | UART_IER_RLSI,
     .mcr = UART_MCR_DTR | UART_MCR_RTS | UART_MCR_AFE,
     .scr = 0x5a,
     .sent = {0x42, 0x43}},
};

void program(const vfio::Device& d, int port, const PortSetup& s) {
  auto latch_divisor = [&] {
    out(d, port, UART_LCR, s.lcr | UART_LCR_DLAB);  // selecting the latch clears it
    out(d, port, UART_DLL, s.divisor & 0xff);
    out(d, port, UART_DLM, s.divisor >> 8);
  };
  out(d, port, UART_FCR, s.fcr);
  if (!s.dlab_at_switch) latch_divisor();
  out(d, port, UART_LCR, s.lcr);
  out(d, port, UART_IER, s.ier);
  out(d, port, UART_MCR, s.mcr);
  out(d, port, UART_SCR, s.scr);
  for (uint8_t b : s.sent) out(d, port, UART_TX, b);
  if (s.dlab_at_switch) latch_divisor();
}

// Programs port p of `m` with setups[p].
void program_all(const Mtty& m, std::span<const PortSetup> setups = kPorts) {
  for (int p = 0; p < m.ports(); ++p) program(m.dev(), p, setups[p]);
}

// The registers of a port that reading does not change. With DLAB set, DLL/DLM read as
// the divisor latch (and IER is not visible).
struct PortView {
  unsigned iir, lcr, mcr, lsr, msr, scr;
  std::optional<uint16_t> divisor;
  bool operator==(const PortView&) const = default;
};

PortView view(const vfio::Device& d, int port) {
  PortView v{};
  v.lcr = in(d, port, UART_LCR);
  if (v.lcr & UART_LCR_DLAB)
    v.divisor = static_cast<uint16_t>(in(d, port, UART_DLL) | in(d, port, UART_DLM) << 8);
  v.iir = in(d, port, UART_IIR);
  v.mcr = in(d, port, UART_MCR);
  v.lsr = in(d, port, UART_LSR);
  v.msr = in(d, port, UART_MSR);
  v.scr = in(d, port, UART_SCR);
  return v;
}

std::vector<PortView> views(const Mtty& m) {
  std::vector<PortView> v;
  for (int p = 0; p < m.ports(); ++p) v.push_back(view(m.dev(), p));
  return v;
}

std::ostream& operator<<(std::ostream& os, const PortView& v) {
  char buf[160];
  std::snprintf(buf, sizeof(buf),
                "{iir %02x lcr %02x mcr %02x lsr %02x msr %02x scr %02x divisor %s}", v.iir, v.lcr,
                v.mcr, v.lsr, v.msr, v.scr, v.divisor ? std::to_string(*v.divisor).c_str() : "-");
  return os << buf;
}

// The programmed state, as reading it shows it (before or after a migration).
void expect_programmed_view(const PortView& v, const PortSetup& s, const std::string& where) {
  EXPECT_EQ(v.lcr, s.lcr | (s.dlab_at_switch ? unsigned{UART_LCR_DLAB} : 0u)) << where;
  if (s.dlab_at_switch) {
    EXPECT_EQ(v.divisor, s.divisor) << where;
  }
  EXPECT_EQ(v.mcr, unsigned{s.mcr}) << where;
  EXPECT_EQ(v.scr, unsigned{s.scr}) << where;
  EXPECT_EQ(v.lsr & UART_LSR_DR, s.sent.empty() ? 0u : unsigned{UART_LSR_DR})
      << where << ": data ready";
  EXPECT_EQ(v.lsr & UART_LSR_OE, s.overrun() ? unsigned{UART_LSR_OE} : 0u) << where << ": overrun";
}

// Checks that `m` holds the state program_all(setups) set and that it reads as
// `expected` (the source's view before the migration); then reads what only destructive
// reads show: IER behind the divisor latch (DLAB is cleared) and the FIFO (drained).
void expect_state(const Mtty& m, const std::vector<PortView>& expected, const std::string& where,
                  std::span<const PortSetup> setups = kPorts) {
  const std::vector<PortView> now = views(m);
  ASSERT_EQ(now.size(), expected.size());
  for (int p = 0; p < m.ports(); ++p) {
    const std::string at = where + ", port " + std::to_string(p);
    const PortSetup& s = setups[p];
    EXPECT_EQ(now[p], expected[p]) << at;
    expect_programmed_view(now[p], s, at);
    if (now[p].lcr & UART_LCR_DLAB)
      out(m.dev(), p, UART_LCR, static_cast<uint8_t>(now[p].lcr & ~UART_LCR_DLAB));
    EXPECT_EQ(in(m.dev(), p, UART_IER), unsigned{s.ier}) << at;
    std::vector<unsigned> fifo;
    while ((in(m.dev(), p, UART_LSR) & UART_LSR_DR) && fifo.size() < 64)
      fifo.push_back(in(m.dev(), p, UART_RX));
    const std::vector<uint8_t> want = s.fifo();
    EXPECT_EQ(fifo, std::vector<unsigned>(want.begin(), want.end())) << at << ": FIFO contents";
  }
}

// ---- running the CLI ----------------------------------------------------------------------------

using CliRun = Exit;

Proc spawn(const std::vector<std::string>& args, const std::vector<int>& keep_fds) {
  return lab::spawn(MDEVMIG_BIN, args, keep_fds);
}

CliRun cli(const std::vector<std::string>& args, const std::vector<int>& keep_fds = {}) {
  Proc p = spawn(args, keep_fds);
  return wait(p);
}

std::string tmp_file(const std::string& name) { return "/tmp/mdevmig-mtty-" + name; }

// mtty reports its whole state as the stop-copy size (header and ports), and sends the
// same bytes whether or not pre-copy took the header first.
uint64_t data_size(const Mtty& m) {
  auto n = m.dev().mig_data_size();
  EXPECT_TRUE(n.ok()) << (n.ok() ? "" : n.error().message());
  return n.ok() ? *n : 0;
}

class MttyTest : public testing::Test {
 protected:
  void SetUp() override {
    MDEVMIG_REQUIRE_LAB();
    loopback_up();
  }
};

// ---- save, inspect, restore ---------------------------------------------------------------------

TEST_F(MttyTest, SaveInspectRestoreCarryTheUartStateOfBothPorts) {
  Mtty a(2), b(2), c(2);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  program_all(a);
  const std::vector<PortView> before = views(a);
  for (int p = 0; p < 2; ++p)
    expect_programmed_view(before[p], kPorts[p], "source before, port " + std::to_string(p));
  const std::string file = tmp_file("save.mdevmig");

  CliRun s = cli({"save", a.fd_arg(), file, "--json"}, {a.dev().fd()});
  ASSERT_EQ(s.rc, 0) << s.err;
  const auto sj = s.json();
  ASSERT_FALSE(sj.is_discarded()) << s.out;
  EXPECT_EQ(sj["stream_bytes"].get<uint64_t>(), data_size(a)) << s.out;
  EXPECT_EQ(a.state(), MigState::kRunning) << "the source runs again after save";
  EXPECT_EQ(views(a), before) << "save changed the source";

  CliRun i = cli({"inspect", file, "--json"});
  ASSERT_EQ(i.rc, 0) << i.err;
  const auto ij = i.json();
  ASSERT_FALSE(ij.is_discarded()) << i.out;
  EXPECT_TRUE(ij["checksums_verified"].get<bool>());
  EXPECT_EQ(ij["device"]["pci_id"], "4348:3253") << "mtty's PCI IDs, spelled as in the text output";
  EXPECT_EQ(ij["device"]["device_api"], "vfio-pci");
  EXPECT_FALSE(ij["device"].contains("compat")) << "no mdevmig compatibility descriptor";
  EXPECT_TRUE(ij["device_stream"].is_null()) << "a foreign stream is not decoded";
  EXPECT_EQ(ij["stream_bytes"].get<uint64_t>(), data_size(a));
  CliRun it = cli({"inspect", file});
  EXPECT_EQ(it.rc, 0) << it.err;
  EXPECT_NE(it.out.find("checksums:"), std::string::npos) << it.out;

  CliRun r = cli({"restore", b.fd_arg(), file}, {b.dev().fd()});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(b.state(), MigState::kRunning);
  expect_state(b, before, "restored");

  CliRun r1 = cli({"restore", c.fd_arg(), file, "--single-pass"}, {c.dev().fd()});
  ASSERT_EQ(r1.rc, 0) << r1.err;
  EXPECT_EQ(c.state(), MigState::kRunning);
  expect_state(c, before, "restored in a single pass");
  ::unlink(file.c_str());
}

TEST_F(MttyTest, AFileOfTheTwoPortTypeIsRefusedByAOnePortInstanceWhichKeepsItsState) {
  Mtty a(2), one(1);
  ASSERT_TRUE(a.ok() && one.ok());
  // The one-port instance's port is set up like the file's port 1, not its port 0.
  const PortSetup other[1] = {kPorts[1]};
  program_all(a);
  program_all(one, other);
  const std::vector<PortView> before = views(one);
  const std::string file = tmp_file("two-port.mdevmig");
  ASSERT_EQ(cli({"save", a.fd_arg(), file}, {a.dev().fd()}).rc, 0);
  CliRun r = cli({"restore", one.fd_arg(), file}, {one.dev().fd()});
  EXPECT_EQ(r.rc, 4) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
  EXPECT_NE(r.err.find("compatib"), std::string::npos) << r.err;
  EXPECT_EQ(one.state(), MigState::kRunning);
  expect_state(one, before, "after the refused restore", other);
  ::unlink(file.c_str());
}

// ---- migrate ------------------------------------------------------------------------------------

struct MigrateCase {
  const char* name;
  bool precopy;
  bool tcp;
};

void PrintTo(const MigrateCase& c, std::ostream* os) { *os << c.name; }

class MttyMigrate : public MttyTest, public testing::WithParamInterface<MigrateCase> {};

TEST_P(MttyMigrate, TheDestinationHoldsTheUartState) {
  const MigrateCase& mc = GetParam();
  Mtty a(2), b(2);
  ASSERT_TRUE(a.ok() && b.ok());
  program_all(a);
  const std::vector<PortView> before = views(a);
  const uint64_t size = data_size(a);
  std::vector<std::string> opts = {"--json"};
  if (!mc.precopy) opts.emplace_back("--no-precopy");

  nlohmann::json src_report;
  if (mc.tcp) {
    std::vector<std::string> dargs = {"migrate", "--listen", "127.0.0.1:0",
                                      "--to",    b.fd_arg(), "--json"};
    Proc dst = spawn(dargs, {b.dev().fd()});
    std::string dst_err;
    const auto line = wait_for_line(dst.err, "listening on 127.0.0.1:", dst_err, 120s);
    if (!line) ::kill(dst.pid, SIGKILL);
    ASSERT_TRUE(line) << dst_err << wait(dst).err;
    const std::string port = line->substr(line->rfind(':') + 1);
    std::vector<std::string> sargs = {"migrate", "--from", a.fd_arg(), "--to", "127.0.0.1:" + port};
    sargs.insert(sargs.end(), opts.begin(), opts.end());
    CliRun s = cli(sargs, {a.dev().fd()});
    if (s.rc != 0) ::kill(dst.pid, SIGKILL);  // it may not have been reached at all
    CliRun d = wait(dst, dst_err);
    ASSERT_EQ(s.rc, 0) << "source: " << s.err << "\ndestination: " << d.err;
    ASSERT_EQ(d.rc, 0) << d.err;
    src_report = s.json();
    ASSERT_FALSE(d.json().is_discarded()) << d.out;
    EXPECT_EQ(src_report["stream_xxh3"], d.json()["stream_xxh3"]);
  } else {
    std::vector<std::string> args = {"migrate", "--from", a.fd_arg(), "--to", b.fd_arg()};
    args.insert(args.end(), opts.begin(), opts.end());
    CliRun r = cli(args, {a.dev().fd(), b.dev().fd()});
    ASSERT_EQ(r.rc, 0) << r.err;
    src_report = r.json();
  }
  ASSERT_FALSE(src_report.is_discarded());
  const auto& bytes = src_report["bytes"];
  if (mc.precopy) {
    EXPECT_EQ(src_report["channel"], "v2-pre-copy");
    EXPECT_GT(bytes["precopy_device"].get<uint64_t>(), 0u)
        << "mtty gives its header during pre-copy";
  } else {
    EXPECT_EQ(bytes["precopy_device"].get<uint64_t>(), 0u);
  }
  EXPECT_EQ(bytes["precopy_device"].get<uint64_t>() + bytes["stopcopy_device"].get<uint64_t>(),
            size)
      << src_report.dump();
  EXPECT_EQ(a.state(), MigState::kStop) << "a migrated source stays stopped";
  EXPECT_EQ(b.state(), MigState::kRunning);
  expect_state(b, before, "destination");
}

INSTANTIATE_TEST_SUITE_P(Mtty, MttyMigrate,
                         testing::Values(MigrateCase{"PreCopyOneHost", true, false},
                                         MigrateCase{"StopCopyOneHost", false, false},
                                         MigrateCase{"PreCopyTcp", true, true},
                                         MigrateCase{"StopCopyTcp", false, true}),
                         [](const testing::TestParamInfo<MigrateCase>& i) {
                           return std::string(i.param.name);
                         });

}  // namespace
}  // namespace mdevmig::lab
