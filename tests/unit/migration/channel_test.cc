// The engine's channels and state driver against the in-process fake VFIO (fake_vfio.h):
// which channel auto picks, the v2 save sequence and its recovery (RUNNING, else reset),
// and the v1 region protocol with hostile register values. What the real module does
// is for the lab (tests/lab/cli).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <linux/pci_regs.h>

#include <cstring>
#include <filesystem>

#include <gtest/gtest.h>

#include "fake_vfio.h"
#include "migration/engine/channel.h"
#include "migration/engine/identity.h"
#include "migration/engine/recovery.h"
#include "migration/engine/savefile.h"
#include "migration/engine/session.h"
#include "migration/io/cancel.h"
#include "migration/io/net.h"
#include "migration/vfio/mdev.h"
#include "migration/vfio/uapi.h"
#include "sim_channel.h"
#include "tools/cli/migrate_workload.h"

namespace mdevmig::engine {
namespace {

namespace fs = std::filesystem;
using vfio::MigState;

constexpr const char* kUuid = "1c9f4a1e-7d3b-4b8a-9e2f-5a6b7c8d9e0f";
constexpr int kGroup = 7;
constexpr uint32_t kV1 = 9;

using fakevfio::type_cap;

// A v1 save of an endless stream, with signal `sig` raised after `at` bytes. Should the
// signal go unseen, the stream ends after 100 chunks and the save succeeds.
struct InterruptedSave {
  Result<SaveReport> result = Error::make(EIO, "not run");
  int signal = 0;                  ///< what the Cancel saw
  uint32_t state_when_raised = 0;  ///< the v1 device state when the signal was raised
  uint32_t state_after = 0;        ///< the v1 device state after the save returned
};

class ChannelTest : public ::testing::Test {
 protected:
  InterruptedSave save_interrupted(int sig, uint64_t at);
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
    ASSERT_TRUE(
        dev.write_as(kV1, offsetof(vfio_device_migration_info, pending_bytes), uint64_t{1} << 30)
            .ok());
    ASSERT_TRUE(
        dev.write_as(kV1, offsetof(vfio_device_migration_info, data_offset), uint64_t{0x800}).ok());
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
    EXPECT_EQ((*open_channel(m.device, ChannelPreference::kAuto, true))->kind(),
              schema::Channel::kV1Region);
    EXPECT_EQ((*open_channel(m.device, ChannelPreference::kAuto, false))->kind(),
              schema::Channel::kV2StopCopy);
    EXPECT_EQ((*open_channel(m.device, ChannelPreference::kV2, true))->kind(),
              schema::Channel::kV2StopCopy);
  }
  state_.mig_flags |= VFIO_MIGRATION_PRE_COPY;
  {
    auto m = open();
    EXPECT_EQ((*open_channel(m.device, ChannelPreference::kAuto, true))->kind(),
              schema::Channel::kV2PreCopy);
    EXPECT_EQ((*open_channel(m.device, ChannelPreference::kV1, true))->kind(),
              schema::Channel::kV1Region);
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
  ASSERT_TRUE(
      dev.write_as(kV1, offsetof(vfio_device_migration_info, data_offset), uint64_t{0x800}).ok());
  ASSERT_TRUE(
      dev.write_as(kV1, offsetof(vfio_device_migration_info, data_size), uint64_t{sizeof(msg)})
          .ok());
  auto a = (*ch)->read(5);
  ASSERT_TRUE(a.ok()) << a.error().message();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(a->data()), a->size()), "stage");
  auto b = (*ch)->read(1000);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->size(), sizeof(msg) - 5);
  // A data_size that leaves the region, and a data_offset inside the registers.
  ASSERT_TRUE(
      dev.write_as(kV1, offsetof(vfio_device_migration_info, data_size), uint64_t{0x10000}).ok());
  auto big = (*ch)->read(1000);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().errnum, EPROTO);
  ASSERT_TRUE(
      dev.write_as(kV1, offsetof(vfio_device_migration_info, data_offset), uint64_t{8}).ok());
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
  ASSERT_TRUE(
      dev.write_as(kV1, offsetof(vfio_device_migration_info, data_offset), uint64_t{0x1000}).ok());
  const char in[] = "resume me";
  ASSERT_TRUE((*ch)->write(std::as_bytes(std::span(in))).ok());
  char back[sizeof(in)] = {};
  ASSERT_TRUE(dev.read(kV1, 0x1000, std::as_writable_bytes(std::span(back))).ok());
  EXPECT_STREQ(back, in);
  EXPECT_EQ(dev.read_as<uint64_t>(kV1, offsetof(vfio_device_migration_info, data_size)).value(),
            sizeof(in));
  ASSERT_TRUE((*ch)->finish_resume(true).ok());
  EXPECT_EQ(dev.read_as<uint32_t>(kV1, 0).value() & VFIO_DEVICE_STATE_MASK,
            uint32_t{VFIO_DEVICE_STATE_V1_RUNNING});
}

// Data the v1 driver staged in pre-copy and the channel has not handed out yet is the
// stream's next bytes after the switch too, even if the driver reuses its mapped data
// section once the state changes.
TEST_F(ChannelTest, V1DataStagedBeforeTheSwitchIsDeliveredAfterIt) {
  add_v1_region();
  vfio_region_info_cap_sparse_mmap sparse{};
  sparse.header = {VFIO_REGION_INFO_CAP_SPARSE_MMAP, 1, 0};
  sparse.nr_areas = 1;
  std::vector<std::byte> cap(sizeof(sparse) + sizeof(vfio_region_sparse_mmap_area));
  std::memcpy(cap.data(), &sparse, sizeof(sparse));
  const vfio_region_sparse_mmap_area area{0x1000, 0x1000};
  std::memcpy(cap.data() + sizeof(sparse), &area, sizeof(area));
  state_.regions[kV1].flags |= VFIO_REGION_INFO_FLAG_MMAP;
  state_.regions[kV1].caps = fakevfio::chain(
      sizeof(vfio_region_info),
      {type_cap(VFIO_REGION_TYPE_MIGRATION_DEPRECATED, VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED),
       cap});
  auto m = open();
  const auto& dev = m.device;
  auto ch = open_channel(dev, ChannelPreference::kV1, true);
  ASSERT_TRUE(ch.ok());
  ASSERT_TRUE((*ch)->start_save(true).ok());
  const std::string staged = "ABCDEFGH";
  ASSERT_TRUE(dev.write(kV1, 0x1000, std::as_bytes(std::span(staged))).ok());
  ASSERT_TRUE(
      dev.write_as(kV1, offsetof(vfio_device_migration_info, data_offset), uint64_t{0x1000}).ok());
  ASSERT_TRUE(
      dev.write_as(kV1, offsetof(vfio_device_migration_info, data_size), uint64_t{staged.size()})
          .ok());
  auto a = (*ch)->read(3);
  ASSERT_TRUE(a.ok()) << a.error().message();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(a->data()), a->size()), "ABC");
  ASSERT_TRUE((*ch)->stop_copy().ok());
  // The driver stages something else in its section after the switch.
  const std::string other = "xxxxxxxx";
  ASSERT_TRUE(dev.write(kV1, 0x1000, std::as_bytes(std::span(other))).ok());
  auto b = (*ch)->read(100);
  ASSERT_TRUE(b.ok()) << b.error().message();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(b->data()), b->size()), "DEFGH");
  ASSERT_TRUE((*ch)->finish_save(true).ok());
}

InterruptedSave ChannelTest::save_interrupted(int sig, uint64_t at) {
  InterruptedSave out;
  add_v1_region();
  auto m = open();
  auto ch = open_channel(m.device, ChannelPreference::kV1, false);
  EXPECT_TRUE(ch.ok());
  if (!ch.ok()) return out;
  stage_endless(m.device, 0x400);
  auto cancel = io::Cancel::create();
  EXPECT_TRUE(cancel.ok());
  if (!cancel.ok()) return out;
  const io::CancelOnSignals on_signals(**cancel);
  UniqueFd fd(::open(file("save.partial").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  SaveOptions opt;
  opt.chunk_size = 0x400;
  opt.cancel = cancel->get();
  opt.progress = [&](uint64_t bytes) {
    if (bytes == at) {
      out.state_when_raised = v1_state(m.device);
      ::raise(sig);
    }
    if (bytes == 100 * 0x400) {
      ASSERT_TRUE(
          m.device.write_as(kV1, offsetof(vfio_device_migration_info, data_size), uint64_t{0})
              .ok());
    }
  };
  schema::DeviceIdentity id;
  id.device_api = "vfio-pci";
  out.result = save_to_file(**ch, id, fd.get(), opt);
  out.state_after = v1_state(m.device);
  out.signal = (*cancel)->signal();
  return out;
}

// Ctrl-C in the middle of a save: the signal handler only raises the Cancel; the save
// loop sees it at the next chunk, and the device runs again with nothing lost.
TEST_F(ChannelTest, SigintMidSaveStopsItAndTheDeviceRunsAgain) {
  InterruptedSave s = save_interrupted(SIGINT, 3 * 0x400);
  const auto& r = s.result;
  ASSERT_FALSE(r.ok()) << "the interruption went unseen";
  EXPECT_EQ(r.error().errnum, EINTR);
  EXPECT_EQ(s.state_when_raised, uint32_t{VFIO_DEVICE_STATE_V1_SAVING}) << "stopped while saving";
  EXPECT_EQ(s.state_after, uint32_t{VFIO_DEVICE_STATE_V1_RUNNING});
  EXPECT_EQ(state_.resets, 0);
  const std::string msg = r.error().message();
  EXPECT_NE(msg.find("interrupted by SIGINT"), std::string::npos) << msg;
  EXPECT_NE(msg.find("recovered to RUNNING"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line";
  EXPECT_EQ(s.signal, SIGINT);
}

// SIGHUP (the terminal or SSH session went away) in the middle of a save is a request
// to stop like SIGTERM: the device runs again, the process is not killed.
TEST_F(ChannelTest, SighupMidSaveStopsItAndTheDeviceRunsAgain) {
  InterruptedSave s = save_interrupted(SIGHUP, 2 * 0x400);
  const auto& r = s.result;
  ASSERT_FALSE(r.ok()) << "the hangup went unseen";
  EXPECT_EQ(r.error().errnum, EINTR);
  EXPECT_EQ(s.state_after, uint32_t{VFIO_DEVICE_STATE_V1_RUNNING});
  EXPECT_NE(r.error().message().find("interrupted by SIGHUP"), std::string::npos)
      << r.error().message();
  EXPECT_EQ(s.signal, SIGHUP);
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
    UniqueFd out(
        ::open(file("dev.mdevmig").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    SaveOptions opt;
    opt.chunk_size = 0x400;
    opt.progress = [&](uint64_t bytes) {
      if (bytes == 8 * 0x400) {
        ASSERT_TRUE(
            m.device.write_as(kV1, offsetof(vfio_device_migration_info, data_size), uint64_t{0})
                .ok());
      }
    };
    auto saved = save_to_file(**ch, id, out.get(), opt);
    ASSERT_TRUE(saved.ok()) << saved.error().message();
    ASSERT_EQ(saved->chunks, 8u);
  }
  auto ch = open_channel(m.device, ChannelPreference::kV1, false);
  ASSERT_TRUE(ch.ok());
  ASSERT_TRUE(
      m.device.write_as(kV1, offsetof(vfio_device_migration_info, data_offset), uint64_t{0x1000})
          .ok());
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
  EXPECT_NE(r.error().message().find("interrupted by SIGTERM"), std::string::npos)
      << r.error().message();
  EXPECT_NE(r.error().message().find("device reset"), std::string::npos) << r.error().message();
}

// A single-pass restore checks the first chunk before the device changes state: a file
// damaged in its first chunk leaves the device running as it was, not reset.
TEST_F(ChannelTest, SinglePassRestoreChecksTheFirstChunkBeforeResuming) {
  add_v1_region();
  auto m = open();
  schema::DeviceIdentity id;
  id.device_api = "vfio-pci";
  const std::string path = file("dev.mdevmig");
  {
    auto ch = open_channel(m.device, ChannelPreference::kV1, false);
    ASSERT_TRUE(ch.ok());
    stage_endless(m.device, 0x400);
    UniqueFd out(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    SaveOptions opt;
    opt.chunk_size = 0x400;
    opt.progress = [&](uint64_t bytes) {
      if (bytes == 4 * 0x400) {
        ASSERT_TRUE(
            m.device.write_as(kV1, offsetof(vfio_device_migration_info, data_size), uint64_t{0})
                .ok());
      }
    };
    ASSERT_TRUE(save_to_file(**ch, id, out.get(), opt).ok());
  }
  // One bit of the first chunk's data flipped.
  uint64_t at = 0;
  {
    UniqueFd in(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    auto scanner = FileScanner::open(in.get());
    ASSERT_TRUE(scanner.ok());
    ASSERT_TRUE(verify_file(*scanner).ok());
    at = scanner->chunks().at(0).file_offset + 7;
  }
  {
    UniqueFd rw(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    std::byte b{};
    ASSERT_EQ(::pread(rw.get(), &b, 1, static_cast<off_t>(at)), 1);
    b ^= std::byte{0x10};
    ASSERT_EQ(::pwrite(rw.get(), &b, 1, static_cast<off_t>(at)), 1);
  }
  ASSERT_TRUE(m.device.write_as(kV1, 0, uint32_t{VFIO_DEVICE_STATE_V1_RUNNING}).ok());
  auto ch = open_channel(m.device, ChannelPreference::kV1, false);
  ASSERT_TRUE(ch.ok());
  UniqueFd in(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  auto scanner = FileScanner::open(in.get());
  ASSERT_TRUE(scanner.ok()) << "the header is intact";
  RestoreOptions opt;
  opt.verify_first = false;
  auto r = restore_from_file(**ch, id, *scanner, opt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().errnum, schema::kCorruptErrno);
  EXPECT_EQ(v1_state(m.device), uint32_t{VFIO_DEVICE_STATE_V1_RUNNING}) << "never RESUMING";
  EXPECT_EQ(state_.resets, 0);
  EXPECT_NE(r.error().message().find("device not touched"), std::string::npos)
      << r.error().message();
}

// `migrate --workload` on a device that is not ours (here with the IDs of the kernel's
// mtty sample): one line, and none of its regions read or written by the workload.
TEST_F(ChannelTest, WorkloadsRefuseADeviceThatIsNotOursBeforeTouchingIt) {
  constexpr uint32_t kRw = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
  state_.regions[VFIO_PCI_BAR0_REGION_INDEX] = {kRw, 0x1000, {}};
  state_.regions[VFIO_PCI_BAR2_REGION_INDEX] = {kRw | VFIO_REGION_INFO_FLAG_MMAP, 0x10000, {}};
  state_.regions[VFIO_PCI_CONFIG_REGION_INDEX] = {kRw, 256, {}};
  auto m = open();
  const auto& dev = m.device;
  ASSERT_TRUE(dev.write_as(VFIO_PCI_CONFIG_REGION_INDEX, PCI_VENDOR_ID, uint16_t{0x4348}).ok());
  ASSERT_TRUE(dev.write_as(VFIO_PCI_CONFIG_REGION_INDEX, PCI_DEVICE_ID, uint16_t{0x3253}).ok());
  auto id = read_identity(dev, kUuid, "");
  ASSERT_TRUE(id.ok()) << id.error().message();
  ASSERT_FALSE(is_mdevmig(*id));
  auto snapshot = [&] {
    std::vector<std::byte> all;
    for (uint32_t r :
         {VFIO_PCI_CONFIG_REGION_INDEX, VFIO_PCI_BAR0_REGION_INDEX, VFIO_PCI_BAR2_REGION_INDEX}) {
      std::vector<std::byte> b(state_.regions[r].size);
      EXPECT_TRUE(dev.read(r, 0, b).ok());
      all.insert(all.end(), b.begin(), b.end());
    }
    return all;
  };
  const auto before = snapshot();
  auto guest = GuestMemory::create(m.container, uint64_t{1} << 30, 4u << 20, true);
  ASSERT_TRUE(guest.ok()) << guest.error().message();
  for (const auto& [bar2, dma] :
       {std::pair{true, false}, std::pair{false, true}, std::pair{true, true}}) {
    cli::WorkloadConfig cfg;
    cfg.bar2 = bar2;
    cfg.dma = dma;
    auto w = cli::Workload::start(dev, *id, &*guest, cfg);
    ASSERT_FALSE(w.ok()) << "bar2 " << bar2 << " dma " << dma;
    const std::string msg = w.error().message();
    EXPECT_NE(msg.find(std::string(kUuid) + " is not an mdevmig device (PCI 4348:3253)"),
              std::string::npos)
        << msg;
    EXPECT_EQ(msg.find("errno"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  EXPECT_EQ(snapshot(), before) << "the workload wrote into a foreign device";
  // --verify's check says the same.
  auto v = cli::check_mdevmig_layout(*id, "--verify");
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().context.find("is not an mdevmig device"), std::string::npos);
}

// ---- v2 reads around PRE_COPY -> STOP_COPY, against a scripted data_fd ------------------
//
// The fake driver answers each read of the data_fd from a script (fake_vfio.h: a FUSE
// file, so io_uring's reads reach it as they reach a driver). Every read submitted in
// PRE_COPY may carry pre-copy's "nothing now" (ENOMSG, or 0 from drivers that answer so)
// however late it completes; only 0 to a read submitted in STOP_COPY ends the stream.

constexpr uint32_t kStopCopy = VFIO_DEVICE_STATE_STOP_COPY;

fakevfio::DataAnswer bytes_answer(std::string_view text, uint32_t after = 0) {
  fakevfio::DataAnswer a;
  const auto b = std::as_bytes(std::span(text.data(), text.size()));
  a.data.assign(b.begin(), b.end());
  a.after_state = after;
  return a;
}
fakevfio::DataAnswer end_answer(int err, uint32_t after = 0) {  // err 0: a 0-byte read
  fakevfio::DataAnswer a;
  a.err = err;
  a.after_state = after;
  return a;
}

class V2ReadTest : public ChannelTest {
 protected:
  void SetUp() override {
    ChannelTest::SetUp();
    if (const std::string why = fakevfio::fuse_unavailable_reason(); !why.empty()) {
      GTEST_SKIP() << "scripted data_fd needs FUSE: " << why;
    }
    state_.mig_flags |= VFIO_MIGRATION_PRE_COPY;
    state_.scripted_data = true;
  }

  std::string text(std::span<const std::byte> d) {
    return std::string(reinterpret_cast<const char*>(d.data()), d.size());
  }

  // Reads in STOP_COPY to the end; the stream after the switch.
  Result<std::string> read_to_end(Channel& ch) {
    std::string out;
    for (;;) {
      auto d = MDEVMIG_TRY(ch.read(4096));
      if (d.empty()) return out;
      out += text(d);
    }
  }
};

// The source's switchover: one chunk of pre-copy data taken, the next read already
// submitted (read-ahead), then STOP_COPY. That read's "nothing now" arrives after the
// switch (in flight across it), or before it without having been taken.
TEST_F(V2ReadTest, APreCopyReadEndingAcrossTheSwitchIsNotTheStreamsEnd) {
  struct Case {
    int err;      // ENOMSG, or 0 for a 0-byte answer
    bool before;  // answered before the switch (else held until STOP_COPY)
  };
  for (const Case c : {Case{ENOMSG, false}, Case{0, false}, Case{ENOMSG, true}, Case{0, true}}) {
    SCOPED_TRACE(std::string(c.err ? "ENOMSG" : "0") + (c.before ? " before" : " after") +
                 " the switch");
    state_.data_answers = {bytes_answer("pre1"), end_answer(c.err, c.before ? 0 : kStopCopy),
                           bytes_answer("stop1"), bytes_answer("stop2"), end_answer(0)};
    state_.data_reads.clear();
    auto m = open();
    auto ch = open_channel(m.device, ChannelPreference::kV2, true);
    ASSERT_TRUE(ch.ok());
    ASSERT_EQ((*ch)->kind(), schema::Channel::kV2PreCopy);
    ASSERT_TRUE((*ch)->start_save(true).ok());
    auto first = (*ch)->read(4096);
    ASSERT_TRUE(first.ok()) << first.error().message();
    EXPECT_EQ(text(*first), "pre1");
    if (c.before) fakevfio::wait_data_reads(state_, 2);  // the read-ahead was answered
    auto stop = (*ch)->stop_copy();
    ASSERT_TRUE(stop.ok()) << stop.error().message();
    auto rest = read_to_end(**ch);
    ASSERT_TRUE(rest.ok()) << rest.error().message();
    EXPECT_EQ(*rest, "stop1stop2") << "the stream after the switch is read entirely";
    ASSERT_GE(state_.data_reads.size(), 2u);
    if (!c.before) {
      EXPECT_EQ(state_.data_reads[1].second, kStopCopy) << "answered after the switch";
    }
    EXPECT_TRUE(state_.data_answers.empty());
    ASSERT_TRUE((*ch)->finish_save(true).ok());
    EXPECT_EQ(state_.mig_state, uint32_t{VFIO_DEVICE_STATE_RUNNING});
  }
}

// A driver that ends pre-copy's "for now" with 0 instead of ENOMSG: each 0 is "no data
// now"; pre-copy data that follows it and the whole stream after the switch are read.
TEST_F(V2ReadTest, ADriverAnsweringZeroInPreCopyIsReadOnAndAfterTheSwitch) {
  state_.data_answers = {bytes_answer("pre1"),  end_answer(0), bytes_answer("pre2"),
                         end_answer(ENOMSG),    end_answer(0), bytes_answer("stop1", kStopCopy),
                         bytes_answer("stop2"), end_answer(0)};
  auto m = open();
  auto ch = open_channel(m.device, ChannelPreference::kV2, true);
  ASSERT_TRUE(ch.ok());
  ASSERT_TRUE((*ch)->start_save(true).ok());
  std::vector<std::string> seen;
  for (int i = 0; i < 5; ++i) {
    auto d = (*ch)->read(4096);
    ASSERT_TRUE(d.ok()) << d.error().message();
    seen.push_back(text(*d));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"pre1", "", "pre2", "", ""}))
      << "0 and ENOMSG are 'nothing now'";
  ASSERT_TRUE((*ch)->stop_copy().ok());
  auto rest = read_to_end(**ch);
  ASSERT_TRUE(rest.ok()) << rest.error().message();
  EXPECT_EQ(*rest, "stop1stop2");
  ASSERT_TRUE((*ch)->finish_save(false).ok());
}

// After the switch ENOMSG is no longer an answer: a read submitted in STOP_COPY that
// gets it fails, naming the state; the device goes back to RUNNING.
TEST_F(V2ReadTest, EnomsgToAStopCopyReadIsAnError) {
  state_.data_answers = {bytes_answer("pre1"), end_answer(ENOMSG), bytes_answer("stop1", kStopCopy),
                         end_answer(ENOMSG)};
  auto m = open();
  auto ch = open_channel(m.device, ChannelPreference::kV2, true);
  ASSERT_TRUE(ch.ok());
  ASSERT_TRUE((*ch)->start_save(true).ok());
  ASSERT_EQ(text((*ch)->read(4096).value()), "pre1");
  ASSERT_TRUE((*ch)->read(4096).value().empty());
  ASSERT_TRUE((*ch)->stop_copy().ok());
  ASSERT_EQ(text((*ch)->read(4096).value()), "stop1");
  auto bad = (*ch)->read(4096);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().errnum, ENOMSG);
  EXPECT_NE(bad.error().context.find("STOP_COPY"), std::string::npos) << bad.error().message();
  EXPECT_TRUE((*ch)->recover().recovered);
  EXPECT_EQ(state_.mig_state, uint32_t{VFIO_DEVICE_STATE_RUNNING});
}

// ---- guest memory through a live session ---------------------------------------------------

// The session's guest memory with unchanged pages left out (the default) and without:
// the destination ends with exactly the source's memory, including a page the workload
// changed and then changed back to its older content, and the report counts what was
// left out. Both guest memories live in the fake container (CPU-written pages only).
TEST_F(ChannelTest, GuestMemoryArrivesExactlyWithUnchangedPagesLeftOut) {
  auto m = open();
  constexpr uint64_t kIova = uint64_t{1} << 30, kBytes = 64 * 4096;
  for (bool skip : {true, false}) {
    SCOPED_TRACE(skip ? "skip on" : "skip off");
    auto sg = GuestMemory::create(m.container, kIova, kBytes, false);
    auto dg = GuestMemory::create(m.container, kIova, kBytes, false);
    ASSERT_TRUE(sg.ok() && dg.ok());
    for (uint64_t i = 0; i < kBytes; ++i) sg->data()[i] = std::byte(i % 253);
    vendor_sim::SimDevice src(16 * MDEVMIG_PAGE_SIZE), dst(16 * MDEVMIG_PAGE_SIZE);
    testing::SimChannel sch(src), dch(dst);
    auto sp = io::stream_pair();
    ASSERT_TRUE(sp.ok());
    std::vector<std::byte> old9(sg->data() + 9 * 4096, sg->data() + 10 * 4096);
    SourceOptions sopt;
    sopt.skip_unchanged_guest = skip;
    sopt.policy.max_iterations = 4;
    sopt.policy.downtime_target_s = -1;
    sopt.on_iteration = [&](const IterationStats& s) {
      std::byte* g = sg->data();
      if (s.iteration == 1) g[9 * 4096 + 5] ^= std::byte{0x81};               // changed
      if (s.iteration == 2) std::memcpy(g + 9 * 4096, old9.data(), 4096);     // and back
      for (uint64_t p : {9, 20, 21, 40}) sg->mark_cpu_dirty(p * 4096, 4096);  // 20, 21, 40 same
    };
    Result<MigrationReport> drep = Error::make(EIO, "not run");
    std::thread t([&] {
      drep = run_destination(dch, testing::sim_identity(dst, "dst"), &*dg, sp->second.get(), {});
    });
    auto rep = run_source(sch, testing::sim_identity(src, "src"), &*sg, sp->first.get(), sopt);
    t.join();
    ASSERT_TRUE(rep.ok()) << rep.error().message();
    ASSERT_TRUE(drep.ok()) << drep.error().message();
    EXPECT_EQ(std::memcmp(sg->data(), dg->data(), kBytes), 0);
    EXPECT_EQ(rep->skip_unchanged_guest, skip);
    // Passes 2-4 and the stop-copy each saw pages 9, 20, 21, 40 dirty: 20, 21 and 40 never
    // changed, 9 changed in passes 2 and 3 (to new content, then back) and not after.
    const uint64_t skipped = rep->precopy_guest_skipped_pages + rep->stopcopy_guest_skipped_pages;
    EXPECT_EQ(skipped, skip ? 3u * 4 + 2 : 0u);
    EXPECT_EQ(rep->precopy_guest_bytes + rep->stopcopy_guest_bytes,
              drep->precopy_guest_bytes + drep->stopcopy_guest_bytes);
    EXPECT_EQ(rep->stopcopy_guest_bytes, skip ? 0u : 4u * 4096);
  }
}

}  // namespace
}  // namespace mdevmig::engine
