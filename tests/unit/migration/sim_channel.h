// A migration Channel over the in-process simulator (vendor/sim): the device model's
// real stream writers and loader behind the engine's Channel interface, so sessions,
// save files and recovery run on any host. Pre-copy sends COMPAT and every page, then
// pages the test dirtied with touch(); stop-copy sends the rest, the state and END.
#pragma once

#include <functional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "migration/engine/channel.h"
#include "sim.h"

namespace mdevmig::testing {

class SimChannel final : public engine::Channel {
 public:
  explicit SimChannel(vendor_sim::SimDevice& dev, bool live = true) : dev_(dev), live_(live) {}

  schema::Channel kind() const override {
    return live_ ? schema::Channel::kV1Region : schema::Channel::kV2StopCopy;
  }

  Result<void> start_save(bool precopy) override {
    ++starts;
    saving_ = true;
    running = precopy;
    out_.clear();
    pos_ = 0;
    finished_ = false;
    vendor_sim::append_compat(out_, dev_.model());
    append_all_pages();
    dirty_.clear();
    if (!precopy) finish_stream();
    return ok();
  }

  Result<void> stop_copy() override {
    running = false;
    if (finished_) return ok();
    append_dirty();
    finish_stream();
    return ok();
  }

  Result<std::span<const std::byte>> read(std::size_t max) override {
    if (on_read) on_read(reads_);
    if (fail_reads_after >= 0 && reads_ >= fail_reads_after) {
      ++reads_;
      return Error::make(EIO, "sim read", "injected");
    }
    ++reads_;
    if (pos_ == out_.size() && running) append_dirty();
    const std::size_t n = std::min(max, out_.size() - pos_);
    std::span<const std::byte> s(reinterpret_cast<const std::byte*>(out_.data()) + pos_, n);
    pos_ += n;
    return s;
  }

  Result<uint64_t> pending() override {
    return (out_.size() - pos_) + dirty_.size() * MDEVMIG_PAGE_SIZE;
  }

  Result<void> finish_save(bool run) override {
    saving_ = false;
    running = run;
    return ok();
  }

  Result<void> start_resume() override {
    ++resumes;
    in_.clear();
    running = false;
    return ok();
  }

  Result<void> write(std::span<const std::byte> data) override {
    const auto* p = reinterpret_cast<const uint8_t*>(data.data());
    in_.insert(in_.end(), p, p + data.size());
    return ok();
  }
  Result<void> drain() override {
    ++drains;
    if (on_drain) on_drain(drains);
    return ok();
  }

  Result<void> finish_resume(bool run) override {
    auto r = dev_.load(in_, 100000);
    if (r.err != 0) {
      return Error::make(EINVAL, "sim load", mdevmig_loader_reason_str(r.reason));
    }
    running = run;
    ++loads;
    return ok();
  }

  engine::Recovery recover() override {
    ++recovers;
    saving_ = false;
    running = true;
    engine::Recovery r;
    r.recovered = true;
    r.now = vfio::MigState::kRunning;
    return r;
  }

  std::string state_name() override { return running ? "SIM RUNNING" : "SIM STOPPED"; }

  // The workload: writes a page (device memory changes and the page is dirty).
  void touch(uint64_t page, uint8_t value) {
    dev_.mem()[page * MDEVMIG_PAGE_SIZE + 17] = value;
    dirty_.insert(page);
  }

  int starts = 0, resumes = 0, recovers = 0, loads = 0, drains = 0;
  std::function<void(int)> on_drain;  ///< called with the count at every drain()
  std::function<void(int)> on_read;   ///< called with the count of earlier reads
  bool running = true;
  int fail_reads_after = -1;

 private:
  void append_all_pages() {
    const uint64_t pages = dev_.mem_size() / MDEVMIG_PAGE_SIZE;
    for (uint64_t p = 0; p < pages; p += MDEVMIG_REC_PAGES_MAX) {
      vendor_sim::append_pages(
          out_, dev_.model(), p,
          static_cast<uint32_t>(std::min<uint64_t>(MDEVMIG_REC_PAGES_MAX, pages - p)));
    }
  }
  void append_dirty() {
    for (uint64_t p : dirty_) vendor_sim::append_pages(out_, dev_.model(), p, 1);
    dirty_.clear();
  }
  void finish_stream() {
    finished_ = true;
    vendor_sim::append_state(out_, dev_.model());
    vendor_sim::append_end(out_);
  }

  vendor_sim::SimDevice& dev_;
  bool live_;
  bool saving_ = false;
  bool finished_ = false;
  std::vector<uint8_t> out_;
  std::size_t pos_ = 0;
  std::vector<uint8_t> in_;
  std::set<uint64_t> dirty_;
  int reads_ = 0;
};

/// The identity an mdevmig instance of `dev`'s geometry reports.
inline schema::DeviceIdentity sim_identity(const vendor_sim::SimDevice& dev,
                                           const std::string& uuid) {
  schema::DeviceIdentity id;
  id.uuid = uuid;
  id.sysfs_path = "/sys/bus/mdev/devices/" + uuid;
  id.device_api = "vfio-pci";
  id.pci_vendor = MDEVMIG_PCI_VENDOR_ID;
  id.pci_device = MDEVMIG_PCI_DEVICE_ID;
  id.region_sizes = {256, MDEVMIG_REGS_SIZE, 0, dev.mem_size()};
  id.compat = schema::Compat{MDEVMIG_STREAM_VERSION, MDEVMIG_MODEL_VERSION, 0, MDEVMIG_PAGE_SIZE,
                             dev.mem_size()};
  return id;
}

}  // namespace mdevmig::testing
