// The harness's guest: what a driver inside the VM would do with the mdevmig device,
// done through qtest (the VM's CPU only halts). It brings the device up (PCI
// enumeration over 0xcf8/0xcfc, BARs, command register, INTx or MSI, the DMA ring),
// runs a live workload (BAR2 writes, DMA descriptors, scratch registers, interrupt
// service), and replays what the device received into the device model (tools/guest's
// Replay, vendor/ in the simulator), so that after a migration the harness can say
// exactly what the surviving VM must hold. The ring is tools/guest's Ring, reached
// through a QtestPort.
//
// Every state-changing access is an Op with a sequence number. qtest executes the
// accesses of one session in order, so whatever VM survives a migration holds a prefix
// of the ops issued on the source: the "cut". (The harness stops issuing while QEMU
// pauses before switchover, see run_migration, so the cut must be all of them.)
// find_cut() locates it by binary search (each op can be checked on its own),
// commit() replays the ops up to the cut into the expected state, and verify() compares
// the VM with it: device memory (a device-side XXH64 of all of it
// plus sampled pages read through BAR2), registers, the guest RAM the DMA engine wrote
// (data, hashes, completion records with their sequence numbers).
#pragma once

#include <linux/mdevmig.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "base/result.h"
#include "tools/guest/layout.h"
#include "tools/guest/qtest_port.h"
#include "tools/guest/replay.h"
#include "tools/guest/ring.h"
#include "tools/qtest/qtest.h"
#include "tools/stress/report.h"

namespace mdevmig::qemu {

using stress::Verification;
using stress::WorkloadStats;

/// Guest-physical layout of the harness VMs (q35, at least 128 MiB of RAM). Guest RAM
/// the DMA engine reaches is tools/guest's one layout at kGuest.
namespace layout {
inline constexpr uint64_t kBar0 = 0xe0000000;               ///< BAR0, MDEVMIG_REGS_SIZE bytes
inline constexpr uint64_t kBar2 = 0x100000000;              ///< BAR2, above 4 GiB (64-bit BAR)
inline constexpr guest::Layout kGuest{.base = 0x00100000};  ///< ring, completions, buffers
inline constexpr uint32_t kRingEntries = 256;
inline constexpr uint64_t kMsi = 0x07f00000;  ///< MSI messages are written here (RAM)
inline constexpr uint32_t kMsiData = 0x4d49;
/// Descriptors in flight at most (< kSlots, so a buffer is never reused while in use).
inline constexpr uint32_t kMaxOutstanding = 32;
static_assert(kMaxOutstanding < guest::Layout::kSlots &&
              kRingEntries <= guest::Layout::kMaxEntries);
}  // namespace layout

/// Where one mdevmig device of a VM sits: it is the index-th mdevmig function on bus 0
/// (in slot order), with its BARs, the guest RAM of its DMA ring and its MSI word at
/// these addresses. Placement{} is the layout above, for a VM with one device;
/// placement(i) places device i of several side by side.
struct Placement {
  uint32_t index = 0;
  uint64_t bar0 = layout::kBar0;
  uint64_t bar2 = layout::kBar2;  ///< aligned to BAR2's size, which must be <= 4 GiB
  guest::Layout guest = layout::kGuest;
  uint64_t msi = layout::kMsi;
};
/// Device `index` of a VM with several: BAR0s 1 MiB apart, BAR2s 4 GiB apart, the ring
/// areas (guest::Layout::kSize each) one after the other from layout::kGuest, MSI words
/// 64 bytes apart. Up to kMaxDevices devices, which fit in a VM of 128 MiB.
[[nodiscard]] Placement placement(uint32_t index);
inline constexpr uint32_t kMaxDevices = 8;

enum class IrqMode { kIntx, kMsi };
[[nodiscard]] const char* irq_mode_name(IrqMode m);
[[nodiscard]] Result<IrqMode> parse_irq_mode(std::string_view text);

/// How fast the live workload goes (it goes as fast as qtest allows if that is less).
struct WorkloadRates {
  double bar2_writes_per_s = 100;  ///< 8-byte writes, each to a different page of BAR2's upper half
  double descs_per_s = 20;         ///< DMA descriptors
  double scratch_per_s = 4;        ///< scratch register writes
  /// While pressure is on (set_pressure), FILL descriptors of this size are kept queued
  /// so that the device dirties its memory faster than pre-copy can send it.
  uint64_t pressure_fill_bytes = 2 << 20;
};

/// One state-changing access of the guest.
struct Op {
  enum class Kind : uint8_t { kBar2Write, kScratch, kSubmit };
  Kind kind = Kind::kBar2Write;
  uint64_t seq = 0;      ///< position in the op sequence (global, committed + pending)
  uint64_t offset = 0;   ///< kBar2Write: BAR2 offset; kScratch: register index
  uint64_t value = 0;    ///< kBar2Write / kScratch: the value written
  uint64_t desc = 0;     ///< kSubmit: descriptor number (its SEQ)
  mdevmig_dma_desc d{};  ///< kSubmit: the descriptor
};

/// What the device and the DMA-written guest RAM must hold: the device model with
/// every committed op replayed into it.
struct ExpectedState {
  guest::Replay device;      ///< vendor/ in the simulator, brought up as bring_up() does
  uint64_t ops = 0;          ///< ops applied
  uint64_t descs = 0;        ///< descriptors consumed (SEQ)
  uint64_t bar2_writes = 0;  ///< BAR2 writes applied
  uint64_t run_seed = 0;     ///< source-buffer contents derive from it

  ExpectedState(uint64_t mem_size, uint64_t run_seed, guest::Layout where = layout::kGuest);
  /// Replays `op` into the device model and runs it until idle.
  void apply(const Op& op);
  [[nodiscard]] uint64_t mem_size() const { return device.mem_size(); }
};

/// Issues the accesses of `op` on `port`: the VM's through qtest, or the model's.
[[nodiscard]] Result<void> perform(guest::DevicePort& port, guest::Ring& ring, uint64_t run_seed,
                                   const Op& op);

/// The bytes the guest puts in the source buffer of descriptor `desc`.
void source_buffer(uint64_t run_seed, uint64_t desc, std::span<uint8_t> out);

/// The guest side of the harness for one mdevmig device, across VMs.
class GuestDriver {
 public:
  GuestDriver(uint64_t mem_size, IrqMode irq, uint64_t seed, WorkloadRates rates,
              Placement where = {});

  /// Brings up the device in a VM that has just started: finds it, programs config
  /// space, the interrupt and the ring, fills device memory and sets the scratch
  /// registers. The expected state starts as a fresh device's.
  [[nodiscard]] Result<void> bring_up(QtestClient& qt);
  /// Takes over a VM whose device arrived by migration: intercepts its interrupts.
  [[nodiscard]] Result<void> adopt(QtestClient& qt);

  /// One turn of the live workload: issues the ops that are due and services
  /// interrupts. Returns when the next op is due.
  [[nodiscard]] Result<Clock::time_point> step(QtestClient& qt);
  /// Starts the rate clocks (call before the first step of a run).
  void start_clock();
  /// Controls for a running workload, safe to call from another thread. BAR2 writes go
  /// through QEMU's mapping of BAR2, which the device's STOP_COPY state (trapped mode)
  /// turns into SIGBUS: they must be off before QEMU may stop the VM. Pressure keeps
  /// large FILL descriptors queued so that QEMU cannot converge while it is on.
  void set_bar2_writes(bool on) { bar2_writes_on_ = on; }
  void set_pressure(bool on) { pressure_on_ = on; }

  /// Waits until the DMA queue is empty and the engine idle.
  [[nodiscard]] Result<void> drain(QtestClient& qt,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(60));
  /// How many pending ops reached the VM behind `qt`, which must be drained.
  [[nodiscard]] Result<uint64_t> find_cut(QtestClient& qt);
  /// Folds the first `cut` pending ops into the expected state; forgets the others
  /// (they went to a VM that is gone).
  void commit(uint64_t cut);
  [[nodiscard]] uint64_t pending() const { return pending_.size(); }
  [[nodiscard]] const std::vector<Op>& pending_ops() const { return pending_; }

  /// Compares the VM with the expected state (drained, nothing pending): registers,
  /// guest RAM, a device-side hash of all device memory and `sample_pages` pages read
  /// through BAR2. Also submits a descriptor and checks that its interrupt arrives.
  [[nodiscard]] Result<Verification> verify(QtestClient& qt, uint32_t sample_pages = 16);

  [[nodiscard]] const ExpectedState& expected() const { return state_; }
  [[nodiscard]] const WorkloadStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }
  [[nodiscard]] int intx_line() const { return intx_line_; }
  [[nodiscard]] IrqMode irq_mode() const { return irq_; }
  [[nodiscard]] uint64_t mem_size() const { return state_.mem_size(); }
  [[nodiscard]] const Placement& where() const { return place_; }

 private:
  // Issues one op on the VM and records it as pending.
  [[nodiscard]] Result<void> issue(QtestClient& qt, Op op);
  [[nodiscard]] Result<void> submit(QtestClient& qt, mdevmig_dma_desc d);
  // Waits until the VM has consumed every descriptor issued so far, then commits all.
  [[nodiscard]] Result<void> settle(QtestClient& qt);
  [[nodiscard]] Result<void> service_irqs(QtestClient& qt);
  [[nodiscard]] Result<void> wait_irq(QtestClient& qt, uint64_t raises_before,
                                      std::chrono::milliseconds timeout);
  [[nodiscard]] Result<bool> landed(QtestClient& qt, const Op& op, uint32_t seq_reg);
  [[nodiscard]] mdevmig_dma_desc random_desc(uint64_t desc);

  // bring_up(), step by step: the function on bus 0, its BARs, its identity, its
  // interrupt, and known contents.
  [[nodiscard]] Result<void> find_function(QtestClient& qt);
  [[nodiscard]] Result<void> program_bars(guest::QtestPort& dev);
  [[nodiscard]] Result<void> check_identity(QtestClient& qt);
  [[nodiscard]] Result<void> enable_msi(guest::QtestPort& dev);
  // Which IOAPIC input INTx A reaches, or (MSI) that the first interrupt arrives.
  [[nodiscard]] Result<void> first_interrupt(QtestClient& qt);
  [[nodiscard]] Result<void> fill_known(QtestClient& qt);

  // verify(), part by part; each adds what differs to v.mismatches.
  [[nodiscard]] Result<void> verify_guest_ram(QtestClient& qt, Verification& v);
  [[nodiscard]] Result<void> verify_device_memory(QtestClient& qt, uint32_t sample_pages,
                                                  Verification& v);
  [[nodiscard]] Result<void> verify_irq(QtestClient& qt, Verification& v);

  [[nodiscard]] Result<uint32_t> reg(QtestClient& qt, uint32_t off);
  [[nodiscard]] Result<void> set_reg(QtestClient& qt, uint32_t off, uint32_t v);
  [[nodiscard]] guest::QtestPort port(QtestClient& qt) const {
    return guest::QtestPort(qt, devfn_, place_.bar0, place_.bar2);
  }

  // What the next op gets, counting the pending ones.
  [[nodiscard]] uint64_t next_seq() const { return state_.ops + pending_.size(); }
  [[nodiscard]] uint64_t next_desc() const { return state_.descs + pending_descs_; }
  [[nodiscard]] uint64_t next_bar2_write() const { return state_.bar2_writes + pending_writes_; }

  Placement place_;
  ExpectedState state_;
  guest::Ring ring_;  // the VM's ring; numbering follows next_desc()
  uint32_t devfn_ = 0;
  std::vector<Op> pending_;
  uint64_t pending_descs_ = 0, pending_writes_ = 0;
  IrqMode irq_;
  int intx_line_ = -1;
  uint64_t head_seen_ = 0;  // descriptors known consumed (from RING_HEAD)
  // An atomic flag that copies (a checkpoint copies the driver).
  struct Flag {
    std::atomic<bool> v;
    explicit Flag(bool b) : v(b) {}
    Flag(const Flag& o) : v(o.v.load()) {}
    Flag& operator=(const Flag& o) {
      v = o.v.load();
      return *this;
    }
    Flag& operator=(bool b) {
      v = b;
      return *this;
    }
    explicit operator bool() const { return v.load(); }
  };
  Flag bar2_writes_on_{true}, pressure_on_{false};
  uint64_t pressure_last_ = 0;  // descriptor number of the last pressure FILL
  WorkloadRates rates_;
  std::mt19937_64 rng_;
  Clock::time_point t0_, next_write_, next_desc_, next_scratch_, next_irq_poll_;
  WorkloadStats stats_;
};

}  // namespace mdevmig::qemu
