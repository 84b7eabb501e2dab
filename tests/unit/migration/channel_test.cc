// The engine's channels and state driver against the in-process fake VFIO (fake_vfio.h):
// which channel auto picks, the v2 save sequence and its recovery (RUNNING, else reset),
// and the v1 region protocol with hostile register values. What the real module does
// is for the lab (tests/lab/cli).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include <gtest/gtest.h>

#include "fake_vfio.h"
#include "migration/engine/channel.h"
#include "migration/engine/recovery.h"
#include "migration/engine/savefile.h"
#include "migration/io/cancel.h"
#include "migration/vfio/mdev.h"
#include "migration/vfio/uapi.h"

namespace mdevmig::engine {
namespace {

namespace fs = std::filesystem;
using vfio::MigState;

constexpr const char* kUuid = "1c9f4a1e-7d3b-4b8a-9e2f-5a6b7c8d9e0f";
constexpr int kGroup = 7;
constexpr uint32_t kV1 = 9;

using fakevfio::type_cap;

class ChannelTest : public testing::Test {
 protected:
  void SetUp() override {
    root_ = fakevfio::make_mdev_tree("mdevmig-chan", kUuid, kGroup, state_);
    paths_ = vfio::VfioPaths{(root_ / "sys").string(), (root_ / "dev").string()};
  }
  void TearDown() override { fs::remove_all(root_); }

  void add_v1_region() {
    state_.regions[kV1] = {VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE, 0x2000,
                           fakevfio::chain(sizeof(vfio_region_info),
                                           {type_cap(VFIO_REGION_TYPE_MIGRATION_DEPRECATED,
                                                     VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED)})};
  }
  // Stages `bytes` of device state in region 9 at 0x800 for every v1 read, for ever (the
  // fake does not consume it): a save ends only when the test zeroes data_size.
  void stage_endless(const vfio::Device& dev, uint64_t bytes) {
    std::vector<std::byte> data(bytes, std::byte{0x5a});
    ASSERT_TRUE(dev.write(kV1, 0x800, data).ok());
    ASSERT_TRUE(dev.write_as(kV1, offsetof(vfio_device_migration_info, pending_bytes), uint64_t{1} << 30).ok());
    ASSERT_TRUE(dev.write_as(kV1, offsetof(vfio_device_migration_info, data_offset), uint64_t{0x800}).ok());
    ASSERT_TRUE(dev.write_as(kV1, offsetof(vfio_device_migration_info, data_size), bytes).ok());
  }
  uint32_t v1_state(const vfio::Device& dev) {
    return dev.read_as<uint32_t>(kV1, 0).value() & VFIO_DEVICE_STATE_MASK;
  }
  std::string file(const char* name) { return (root_ / name).string(); }

  vfio::OpenMdev open() {
    auto m = vfio::open_mdev(kUuid, paths_);
    EXPECT_TRUE(m.ok()) << m.error().message();
    return std::move(m).value();
  }

  fs::path root_;
  vfio::VfioPaths paths_;
  fakevfio::State state_;
  fakevfio::Scope scope_{state_};
};

TEST_F(ChannelTest, AutoPicksV2PreCopyThenV1ThenV2StopCopy) {
  add_v1_region();
  {
    auto m = open();
    EXPECT_EQ((*open_channel(m.device, ChannelPreference::kAuto, true))->kind(), schema::Channel::kV1Region);
    EXPECT_EQ((*open_channel(m.device, ChannelPreference::kAuto, false))->kind(), schema::Channel::kV2StopCopy);
    EXPECT_EQ((*open_channel(m.device, ChannelPreference::kV2, true))->kind(), schema::Channel::kV2StopCopy);
  }
  state_.mig_flags |= VFIO_MIGRATION_PRE_COPY;
  {
    auto m = open();
    EXPECT_EQ((*open_channel(m.device, ChannelPreference::kAuto, true))->kind(), schema::Channel::kV2PreCopy);
    EXPECT_EQ((*open_channel(m.device, ChannelPreference::kV1, true))->kind(), schema::Channel::kV1Region);
  }
}

TEST_F(ChannelTest, MissingInterfacesAreNamed) {
  state_.mig_flags = 0;
  auto m = open();
  auto v1 = open_channel(m.device, ChannelPreference::kV1, true);
  ASSERT_FALSE(v1.ok());
  EXPECT_EQ(v1.error().errnum, EOPNOTSUPP);
  EXPECT_NE(v1.error().context.find("v1 migration region"), std::string::npos);
  EXPECT_FALSE(open_channel(m.device, ChannelPreference::kAuto, true).ok());
}

TEST_F(ChannelTest, V2SaveGoesStopStopCopyAndBackToRunning) {
  auto m = open();
  auto ch = open_channel(m.device, ChannelPreference::kV2, false);
  ASSERT_TRUE(ch.ok());
  ASSERT_TRUE((*ch)->start_save(false).ok());
  EXPECT_EQ(state_.mig_state, uint32_t{VFIO_DEVICE_STATE_STOP_COPY});
  auto data = (*ch)->read(4096);
  ASSERT_TRUE(data.ok()) << data.error().message();
  EXPECT_TRUE(data->empty()) << "the fake's stream is empty";
  ASSERT_TRUE((*ch)->finish_save(true).ok());
  EXPECT_EQ(state_.mig_state, uint32_t{VFIO_DEVICE_STATE_RUNNING});
  EXPECT_EQ((*ch)->state_name(), "RUNNING");
}

TEST_F(ChannelTest, AFailedTransitionRecoversToRunningElseResets) {
  auto m = open();
  auto ch = open_channel(m.device, ChannelPreference::kV2, false);
  ASSERT_TRUE(ch.ok());
  state_.fail_set_state_errno = EIO;  // every SET fails, RUNNING included
  auto r = (*ch)->start_save(false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().errnum, EIO);
  const Recovery rec = (*ch)->recover();
  EXPECT_TRUE(rec.reset);
  EXPECT_EQ(state_.resets, 1);
  EXPECT_NE(rec.text().find("device reset"), std::string::npos) << rec.text();
  // The StateDriver reports the same in the error it returns.
  state_.resets = 0;
  auto set = StateDriver(m.device).set(MigState::kStop, MigState::kRunning);
  ASSERT_FALSE(set.ok());
  EXPECT_NE(set.error().context.find("device reset"), std::string::npos) << set.error().message();
  EXPECT_EQ(state_.resets, 1);
  // When the recover state is reachable, no reset.
  state_.fail_set_state_errno = 0;
  state_.resets = 0;
  const Recovery ok_rec = StateDriver(m.device).recover_to(MigState::kRunning);
  EXPECT_TRUE(ok_rec.recovered);
  EXPECT_FALSE(ok_rec.reset);
  EXPECT_EQ(state_.resets, 0);
}

// The fake's region 9 is plain memory: the test plays the driver by writing the
// registers the channel reads (pending_bytes, data_offset, data_size) and the data.
TEST_F(ChannelTest, V1ProtocolReadsStagedDataAndRefusesHostileOffsets) {
  add_v1_region();
  auto m = open();
  auto ch = open_channel(m.device, ChannelPreference::kV1, true);
  ASSERT_TRUE(ch.ok());
  const auto& dev = m.device;
  ASSERT_TRUE((*ch)->start_save(true).ok());
  EXPECT_EQ(dev.read_as<uint32_t>(kV1, 0).value() & VFIO_DEVICE_STATE_MASK,
            uint32_t{VFIO_DEVICE_STATE_V1_RUNNING | VFIO_DEVICE_STATE_V1_SAVING});
  const char msg[] = "staged device state";
  ASSERT_TRUE(dev.write(kV1, 0x800, std::as_bytes(std::span(msg))).ok());
  ASSERT_TRUE(dev.write_as(kV1, offsetof(vfio_device_migration_info, data_offset), uint64_t{0x800}).ok());
  ASSERT_TRUE(dev.write_as(kV1, offsetof(vfio_device_migration_info, data_size), uint64_t{sizeof(msg)}).ok());
  auto a = (*ch)->read(5);
  ASSERT_TRUE(a.ok()) << a.error().message();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(a->data()), a->size()), "stage");
  auto b = (*ch)->read(1000);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->size(), sizeof(msg) - 5);
  // A data_size that leaves the region, and a data_offset inside the registers.
  ASSERT_TRUE(dev.write_as(kV1, offsetof(vfio_device_migration_info, data_size), uint64_t{0x10000}).ok());
  auto big = (*ch)->read(1000);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().errnum, EPROTO);
  ASSERT_TRUE(dev.write_as(kV1, offsetof(vfio_device_migration_info, data_offset), uint64_t{8}).ok());
  ASSERT_TRUE(dev.write_as(kV1, offsetof(vfio_device_migration_info, data_size), uint64_t{4}).ok());
  auto low = (*ch)->read(1000);
  ASSERT_FALSE(low.ok());
  EXPECT_EQ(low.error().errnum, EPROTO);
  // Recovery writes RUNNING back (read-modify-write keeps reserved bits).
  ASSERT_TRUE(dev.write_as(kV1, 0, uint32_t{0x100 | VFIO_DEVICE_STATE_V1_SAVING}).ok());
  const Recovery r = (*ch)->recover();
  EXPECT_TRUE(r.recovered);
  EXPECT_EQ(dev.read_as<uint32_t>(kV1, 0).value(), uint32_t{0x100 | VFIO_DEVICE_STATE_V1_RUNNING});
  // Resume: data goes to data_offset, then data_size is written.
  ASSERT_TRUE((*ch)->start_resume().ok());
  ASSERT_TRUE(dev.write_as(kV1, offsetof(vfio_device_migration_info, data_offset), uint64_t{0x1000}).ok());
  const char in[] = "resume me";
  ASSERT_TRUE((*ch)->write(std::as_bytes(std::span(in))).ok());
  char back[sizeof(in)] = {};
  ASSERT_TRUE(dev.read(kV1, 0x1000, std::as_writable_bytes(std::span(back))).ok());
  EXPECT_STREQ(back, in);
  EXPECT_EQ(dev.read_as<uint64_t>(kV1, offsetof(vfio_device_migration_info, data_size)).value(), sizeof(in));
  ASSERT_TRUE((*ch)->finish_resume(true).ok());
  EXPECT_EQ(dev.read_as<uint32_t>(kV1, 0).value() & VFIO_DEVICE_STATE_MASK, uint32_t{VFIO_DEVICE_STATE_V1_RUNNING});
}

// Ctrl-C in the middle of a save: the signal handler only raises the Cancel; the save
// loop sees it at the next chunk, and the device runs again with nothing lost.
TEST_F(ChannelTest, SigintMidSaveStopsItAndTheDeviceRunsAgain) {
  add_v1_region();
  auto m = open();
  auto ch = open_channel(m.device, ChannelPreference::kV1, false);
  ASSERT_TRUE(ch.ok());
  stage_endless(m.device, 0x400);
  auto cancel = io::Cancel::create();
  ASSERT_TRUE(cancel.ok());
  const io::CancelOnSignals on_signals(**cancel);
  UniqueFd out(::open(file("save.partial").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  SaveOptions opt;
  opt.chunk_size = 0x400;
  opt.cancel = cancel->get();
  uint32_t state_while_saving = 0;
  opt.progress = [&](uint64_t bytes) {
    if (bytes == 3 * 0x400) {
      state_while_saving = v1_state(m.device);
      ::raise(SIGINT);
    }
    // Should the interruption go unseen, the stream ends here and the save succeeds.
    if (bytes == 100 * 0x400) {
      ASSERT_TRUE(m.device.write_as(kV1, offsetof(vfio_device_migration_info, data_size), uint64_t{0}).ok());
    }
  };
  schema::DeviceIdentity id;
  id.device_api = "vfio-pci";
  auto r = save_to_file(**ch, id, out.get(), opt);
  ASSERT_FALSE(r.ok()) << "the interruption went unseen";
  EXPECT_EQ(r.error().errnum, EINTR);
  EXPECT_EQ(state_while_saving, uint32_t{VFIO_DEVICE_STATE_V1_SAVING}) << "stopped while saving";
  EXPECT_EQ(v1_state(m.device), uint32_t{VFIO_DEVICE_STATE_V1_RUNNING});
  EXPECT_EQ(state_.resets, 0);
  const std::string msg = r.error().message();
  EXPECT_NE(msg.find("interrupted by SIGINT"), std::string::npos) << msg;
  EXPECT_NE(msg.find("recovered to RUNNING"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line";
  EXPECT_EQ((*cancel)->signal(), SIGINT);
}

// SIGTERM in the middle of a restore's load: the device that was half loaded is reset.
TEST_F(ChannelTest, SigtermMidRestoreResetsTheDevice) {
  add_v1_region();
  auto m = open();
  schema::DeviceIdentity id;
  id.device_api = "vfio-pci";
  {
    // A finite save: the staged data stops after 8 chunks.
    auto ch = open_channel(m.device, ChannelPreference::kV1, false);
    ASSERT_TRUE(ch.ok());
    stage_endless(m.device, 0x400);
    UniqueFd out(::open(file("dev.mdevmig").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    SaveOptions opt;
    opt.chunk_size = 0x400;
    opt.progress = [&](uint64_t bytes) {
      if (bytes == 8 * 0x400) {
        ASSERT_TRUE(m.device.write_as(kV1, offsetof(vfio_device_migration_info, data_size), uint64_t{0}).ok());
      }
    };
    auto saved = save_to_file(**ch, id, out.get(), opt);
    ASSERT_TRUE(saved.ok()) << saved.error().message();
    ASSERT_EQ(saved->chunks, 8u);
  }
  auto ch = open_channel(m.device, ChannelPreference::kV1, false);
  ASSERT_TRUE(ch.ok());
  ASSERT_TRUE(m.device.write_as(kV1, offsetof(vfio_device_migration_info, data_offset), uint64_t{0x1000}).ok());
  UniqueFd in(::open(file("dev.mdevmig").c_str(), O_RDONLY | O_CLOEXEC));
  auto scanner = FileScanner::open(in.get());
  ASSERT_TRUE(scanner.ok()) << scanner.error().message();
  auto cancel = io::Cancel::create();
  ASSERT_TRUE(cancel.ok());
  const io::CancelOnSignals on_signals(**cancel);
  RestoreOptions opt;
  opt.cancel = cancel->get();
  uint32_t state_while_loading = 0;
  opt.progress = [&](uint64_t bytes, uint64_t) {
    if (bytes == 0x400) {
      state_while_loading = v1_state(m.device);
      ::raise(SIGTERM);
    }
  };
  auto r = restore_from_file(**ch, id, *scanner, opt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().errnum, EINTR);
  EXPECT_EQ(state_while_loading, uint32_t{VFIO_DEVICE_STATE_V1_RESUMING});
  EXPECT_EQ(state_.resets, 1) << "a half-loaded device is reset";
  EXPECT_NE(r.error().message().find("interrupted by SIGTERM"), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("device reset"), std::string::npos) << r.error().message();
}

}  // namespace
}  // namespace mdevmig::engine
