#include "migration/engine/channel.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <utility>
#include <vector>

#include "migration/vfio/sys.h"
#include "migration/vfio/uapi.h"

namespace mdevmig::engine {
namespace {

using vfio::MigState;

enum class Mode { kIdle, kSaving, kResuming };

Error no_data_fd(const vfio::Device& dev, MigState target) {
  return Error::make(EPROTO, "VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE SET",
                     dev.name() + " target " + vfio::mig_state_name(target) + ": no data_fd");
}

// ---- v2 --------------------------------------------------------------------------------

class V2Channel final : public Channel {
 public:
  V2Channel(const vfio::Device& dev, bool precopy, io::IoOptions io)
      : dev_(dev), precopy_(precopy), io_(std::move(io)) {
    if (io_.name.empty()) io_.name = dev.name() + " data_fd";
  }

  schema::Channel kind() const override {
    return precopy_ ? schema::Channel::kV2PreCopy : schema::Channel::kV2StopCopy;
  }

  Result<void> start_save(bool precopy) override {
    mode_ = Mode::kSaving;
    UniqueFd fd;
    if (precopy && precopy_) {
      fd = MDEVMIG_TRY(dev_.set_mig_state(MigState::kPreCopy));
      if (!fd) return no_data_fd(dev_, MigState::kPreCopy);
      stopped_ = false;
    } else {
      MDEVMIG_TRY(dev_.set_mig_state(MigState::kStop));
      fd = MDEVMIG_TRY(dev_.set_mig_state(MigState::kStopCopy));
      if (!fd) return no_data_fd(dev_, MigState::kStopCopy);
      stopped_ = true;
    }
    data_fd_ = std::move(fd);
    reader_.emplace(MDEVMIG_TRY(io::Reader::create(data_fd_.get(), io::kStream, io_)));
    returned_ = 0;
    return ok();
  }

  Result<void> stop_copy() override {
    if (stopped_) return ok();
    // PRE_COPY -> STOP_COPY keeps the same data_fd; the rest of the state follows.
    UniqueFd extra = MDEVMIG_TRY(dev_.set_mig_state(MigState::kStopCopy));
    stopped_ = true;
    // Every read submitted before the switch belongs to pre-copy, however late it
    // completes: its ENOMSG or 0 is pre-copy's "nothing now", not the end of the stream
    // (a read in flight across the switch, or an answer the consumer has not taken).
    // Wait for them and forget those ends; from here on only 0 ends the stream.
    MDEVMIG_TRY(reader_->settle(ENOMSG));
    return ok();
  }

  // PRE_COPY: ENOMSG is "no data now", and so is 0 (the uAPI asks for ENOMSG, some
  // drivers answer 0; neither ends the stream). STOP_COPY: 0 is the end, ENOMSG an error.
  Result<std::span<const std::byte>> read(std::size_t max) override {
    auto r = reader_->next(max);
    if (r.ok()) {
      returned_ += r->size();
      if (r->empty() && !stopped_) MDEVMIG_TRY(reader_->settle(ENOMSG));
      return r;
    }
    if (r.error().errnum == ENOMSG && !stopped_) return std::span<const std::byte>{};
    r.error().context += " (state " + state_name() + ")";
    return std::move(r).error();
  }

  Result<uint64_t> pending() override {
    if (!stopped_ && data_fd_) {
      auto info = dev_.precopy_info(data_fd_.get());
      // The reader keeps slots filled ahead of read(): those bytes left the device.
      if (info.ok()) return info->initial_bytes + info->dirty_bytes + read_ahead();
    }
    auto size = dev_.mig_data_size();
    return size.ok() ? *size : 0;
  }

  Result<void> finish_save(bool run) override {
    reader_.reset();
    MDEVMIG_TRY(dev_.set_mig_state(MigState::kStop));  // closes the session
    data_fd_.reset();
    mode_ = Mode::kIdle;
    if (run) MDEVMIG_TRY(dev_.set_mig_state(MigState::kRunning));
    return ok();
  }

  Result<void> start_resume() override {
    mode_ = Mode::kResuming;
    MDEVMIG_TRY(dev_.set_mig_state(MigState::kStop));
    data_fd_ = MDEVMIG_TRY(dev_.set_mig_state(MigState::kResuming));
    if (!data_fd_) return no_data_fd(dev_, MigState::kResuming);
    writer_.emplace(MDEVMIG_TRY(io::Writer::create(data_fd_.get(), io::kStream, io_)));
    return ok();
  }

  Result<void> write(std::span<const std::byte> data) override { return writer_->write(data); }
  Result<void> drain() override { return writer_->flush(); }

  Result<void> finish_resume(bool run) override {
    MDEVMIG_TRY(writer_->flush());
    writer_.reset();
    MDEVMIG_TRY(dev_.set_mig_state(MigState::kStop));  // the device loads the stream here
    data_fd_.reset();
    mode_ = Mode::kIdle;
    if (run) MDEVMIG_TRY(dev_.set_mig_state(MigState::kRunning));
    return ok();
  }

  Recovery recover() override {
    reader_.reset();
    writer_.reset();
    const Mode mode = std::exchange(mode_, Mode::kIdle);
    const std::optional<MigState> back =
        mode == Mode::kResuming ? std::nullopt : std::optional<MigState>(MigState::kRunning);
    Recovery r = StateDriver(dev_).recover_to(back);
    data_fd_.reset();
    return r;
  }

  std::string state_name() override { return StateDriver(dev_).state_name(); }

 private:
  const vfio::Device& dev_;
  bool precopy_;
  io::IoOptions io_;
  Mode mode_ = Mode::kIdle;
  bool stopped_ = false;
  UniqueFd data_fd_;
  std::optional<io::Reader> reader_;
  std::optional<io::Writer> writer_;
  uint64_t returned_ = 0;  ///< bytes read() returned in this save session

  uint64_t read_ahead() const {
    return reader_ && reader_->stats().bytes > returned_ ? reader_->stats().bytes - returned_ : 0;
  }
};

// ---- v1 region -------------------------------------------------------------------------

constexpr uint64_t kStateOff = offsetof(vfio_device_migration_info, device_state);
constexpr uint64_t kPendingOff = offsetof(vfio_device_migration_info, pending_bytes);
constexpr uint64_t kDataOffsetOff = offsetof(vfio_device_migration_info, data_offset);
constexpr uint64_t kDataSizeOff = offsetof(vfio_device_migration_info, data_size);
constexpr uint32_t kV1Running = VFIO_DEVICE_STATE_V1_RUNNING;
constexpr uint32_t kV1Saving = VFIO_DEVICE_STATE_V1_SAVING;
constexpr uint32_t kV1Resuming = VFIO_DEVICE_STATE_V1_RESUMING;

class V1Channel final : public Channel {
 public:
  V1Channel(const vfio::Device& dev, uint32_t index, uint64_t region_size,
            std::optional<vfio::Mapping> map, uint64_t map_offset)
      : dev_(dev),
        index_(index),
        region_size_(region_size),
        map_(std::move(map)),
        map_offset_(map_offset) {}

  schema::Channel kind() const override { return schema::Channel::kV1Region; }

  Result<void> start_save(bool precopy) override {
    mode_ = Mode::kSaving;
    MDEVMIG_TRY(set_state(precopy ? kV1Running | kV1Saving : kV1Saving));
    return ok();
  }

  Result<void> stop_copy() override {
    // Data staged before the switch and not taken yet is still the stream's next bytes,
    // but a mapped data section is the driver's to reuse once the state changes: copy
    // the rest out first.
    if (pos_ < size_ && cur_ != buf_.data()) {
      std::vector<std::byte> rest(cur_ + pos_, cur_ + size_);
      buf_ = std::move(rest);
      cur_ = buf_.data();
      size_ -= pos_;
      pos_ = 0;
    }
    return set_state(kV1Saving);
  }

  Result<std::span<const std::byte>> read(std::size_t max) override {
    if (pos_ == size_) {
      // One iteration of the v1 save protocol: pending_bytes, data_offset (the driver
      // stages data when it is read), data_size, then the data.
      (void)MDEVMIG_TRY(reg<uint64_t>(kPendingOff));
      const uint64_t off = MDEVMIG_TRY(reg<uint64_t>(kDataOffsetOff));
      const uint64_t size = MDEVMIG_TRY(reg<uint64_t>(kDataSizeOff));
      if (size == 0) return std::span<const std::byte>{};
      cur_ = MDEVMIG_TRY(data_at(off, size));
      pos_ = 0;
      size_ = size;
    }
    const std::size_t n = std::min<std::size_t>(max, size_ - pos_);
    std::span<const std::byte> out(cur_ + pos_, n);
    pos_ += n;
    return out;
  }

  // Staged data not yet returned is no longer in the driver's pending_bytes.
  Result<uint64_t> pending() override {
    return MDEVMIG_TRY(reg<uint64_t>(kPendingOff)) + (mode_ == Mode::kSaving ? size_ - pos_ : 0);
  }

  Result<void> finish_save(bool run) override {
    MDEVMIG_TRY(set_state(run ? kV1Running : 0));
    mode_ = Mode::kIdle;
    return ok();
  }

  Result<void> start_resume() override {
    mode_ = Mode::kResuming;
    return set_state(kV1Resuming);
  }

  Result<void> write(std::span<const std::byte> data) override {
    while (!data.empty()) {
      // The v1 resume protocol: data_offset, the data, then data_size (consumed now).
      const uint64_t off = MDEVMIG_TRY(reg<uint64_t>(kDataOffsetOff));
      const uint64_t cap = MDEVMIG_TRY(capacity_at(off));
      const std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(data.size(), cap));
      if (mapped(off, n)) {
        std::memcpy(static_cast<std::byte*>(map_->data()) + (off - map_offset_), data.data(), n);
      } else {
        MDEVMIG_TRY(dev_.write(index_, off, data.first(n)));
      }
      MDEVMIG_TRY(dev_.write_as(index_, kDataSizeOff, uint64_t{n}));
      data = data.subspan(n);
    }
    return ok();
  }

  Result<void> finish_resume(bool run) override {
    MDEVMIG_TRY(set_state(run ? kV1Running : 0));  // leaving RESUMING commits
    mode_ = Mode::kIdle;
    return ok();
  }

  Recovery recover() override {
    const Mode mode = std::exchange(mode_, Mode::kIdle);
    pos_ = size_ = 0;
    Recovery r;
    if (mode != Mode::kResuming && set_state(kV1Running).ok()) {
      r.recovered = true;
      r.now = MigState::kRunning;
      return r;
    }
    r.reset = true;
    r.recovered = dev_.reset().ok();
    auto state = reg<uint32_t>(kStateOff);
    if (r.recovered && state.ok() && (*state & VFIO_DEVICE_STATE_MASK) == kV1Running) {
      r.now = MigState::kRunning;
    }
    return r;
  }

  std::string state_name() override {
    auto s = reg<uint32_t>(kStateOff);
    return s.ok() ? "v1 " + vfio::v1_state_name(*s) : std::string("unknown");
  }

 private:
  template <typename T>
  Result<T> reg(uint64_t off) {
    auto v = dev_.read_as<T>(index_, off);
    if (!v.ok()) v.error().context += " (v1 migration region)";
    return v;
  }

  // device_state is read-modify-write: bits 3..31 are reserved for the driver.
  Result<void> set_state(uint32_t bits) {
    const uint32_t cur = MDEVMIG_TRY(reg<uint32_t>(kStateOff));
    const uint32_t next = (cur & ~uint32_t{VFIO_DEVICE_STATE_MASK}) | bits;
    auto r = dev_.write_as(index_, kStateOff, next);
    if (!r.ok()) {
      r.error().context += " (v1 device_state " + vfio::v1_state_name(cur) + " -> " +
                           vfio::v1_state_name(bits) + ")";
    }
    return r;
  }

  bool mapped(uint64_t off, uint64_t n) const {
    return map_ && off >= map_offset_ && off - map_offset_ <= map_->size() &&
           n <= map_->size() - (off - map_offset_);
  }

  Result<uint64_t> capacity_at(uint64_t off) {
    if (off < sizeof(vfio_device_migration_info) || off >= region_size_) {
      return Error::make(EPROTO, "v1 data_offset",
                         dev_.name() + ": " + vfio::hex(off) + " outside the region");
    }
    if (map_ && off >= map_offset_ && off - map_offset_ < map_->size()) {
      return map_->size() - (off - map_offset_);
    }
    return region_size_ - off;
  }

  // The staged data: in the mmapped section, or read into buf_.
  Result<const std::byte*> data_at(uint64_t off, uint64_t size) {
    const uint64_t cap = MDEVMIG_TRY(capacity_at(off));
    if (size > cap) {
      return Error::make(EPROTO, "v1 data_size",
                         dev_.name() + ": " + std::to_string(size) + " bytes at " + vfio::hex(off) +
                             " leave the region");
    }
    if (mapped(off, size)) return static_cast<const std::byte*>(map_->data()) + (off - map_offset_);
    buf_.resize(size);
    MDEVMIG_TRY(dev_.read(index_, off, buf_));
    return buf_.data();
  }

  const vfio::Device& dev_;
  uint32_t index_;
  uint64_t region_size_;
  std::optional<vfio::Mapping> map_;
  uint64_t map_offset_;
  Mode mode_ = Mode::kIdle;
  const std::byte* cur_ = nullptr;
  std::size_t pos_ = 0, size_ = 0;
  std::vector<std::byte> buf_;
};

Result<std::unique_ptr<Channel>> make_v1(const vfio::Device& dev, uint32_t index) {
  const vfio::RegionInfo* r = MDEVMIG_TRY(dev.region(index));
  std::optional<vfio::Mapping> map;
  uint64_t map_offset = 0;
  const auto areas = r->mmap_areas();
  if (!areas.empty()) {
    auto m = dev.mmap_region(index, 0);
    if (m.ok()) {
      map.emplace(std::move(m.value()));
      map_offset = areas[0].offset;
    }
  }
  return std::unique_ptr<Channel>(
      std::make_unique<V1Channel>(dev, index, r->size, std::move(map), map_offset));
}

}  // namespace

Result<std::unique_ptr<Channel>> open_channel(const vfio::Device& dev, ChannelPreference pref,
                                              bool want_precopy, io::IoOptions io) {
  auto flags = dev.migration_flags();
  const bool v2 = flags.ok() && (*flags & VFIO_MIGRATION_STOP_COPY) != 0;
  const bool v2_pre = v2 && (*flags & VFIO_MIGRATION_PRE_COPY) != 0;
  const auto v1 = dev.find_region(VFIO_REGION_TYPE_MIGRATION_DEPRECATED,
                                  VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED);
  auto make_v2 = [&] {
    return std::unique_ptr<Channel>(std::make_unique<V2Channel>(dev, v2_pre && want_precopy, io));
  };
  switch (pref) {
    case ChannelPreference::kV2:
      if (v2) return make_v2();
      break;
    case ChannelPreference::kV1:
      if (v1) return make_v1(dev, *v1);
      break;
    case ChannelPreference::kAuto:
      if (v2_pre || (v2 && !want_precopy)) return make_v2();
      if (v1) return make_v1(dev, *v1);
      if (v2) return make_v2();
      break;
  }
  const char* what = pref == ChannelPreference::kV1   ? "v1 migration region"
                     : pref == ChannelPreference::kV2 ? "v2 migration"
                                                      : "migration interface";
  return Error::make(EOPNOTSUPP, "open migration channel",
                     dev.name() + ": no " + what + " (migration flags " +
                         (flags.ok() ? vfio::mig_flags_text(*flags) : std::string("unavailable")) +
                         ")");
}

Result<ChannelPreference> parse_channel_preference(std::string_view text) {
  if (text == "auto") return ChannelPreference::kAuto;
  if (text == "v2") return ChannelPreference::kV2;
  if (text == "v1") return ChannelPreference::kV1;
  return Error::make(EINVAL, "usage",
                     "--channel wants auto, v2 or v1, got '" + std::string(text) + "'");
}

}  // namespace mdevmig::engine
