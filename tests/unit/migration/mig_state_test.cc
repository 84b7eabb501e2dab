// State and flag name tables.
#include <gtest/gtest.h>

#include "migration/vfio/mig_state.h"
#include "migration/vfio/uapi.h"

namespace mdevmig::vfio {
namespace {

// A new state must be added to the tables below (and to every per-state table).
static_assert(kMigStateCount == 8);

TEST(MigState, NamesRoundTripForEveryState) {
  const char* expected[kMigStateCount] = {"ERROR",    "STOP",        "RUNNING",  "STOP_COPY",
                                          "RESUMING", "RUNNING_P2P", "PRE_COPY", "PRE_COPY_P2P"};
  for (uint32_t i = 0; i < kMigStateCount; ++i) {
    const auto s = static_cast<MigState>(i);
    EXPECT_TRUE(mig_state_valid(i));
    EXPECT_EQ(mig_state_name(s), expected[i]);
    EXPECT_EQ(parse_mig_state(expected[i]), s);
  }
}

TEST(MigState, ParseIsCaseInsensitiveAndStrict) {
  EXPECT_EQ(parse_mig_state("stop_copy"), MigState::kStopCopy);
  EXPECT_EQ(parse_mig_state("Running_P2P"), MigState::kRunningP2P);
  EXPECT_FALSE(parse_mig_state("STOP_COP").has_value());
  EXPECT_FALSE(parse_mig_state("STOP_COPYX").has_value());
  EXPECT_FALSE(parse_mig_state("").has_value());
}

TEST(MigState, InvalidValues) {
  EXPECT_FALSE(mig_state_valid(8));
  EXPECT_FALSE(mig_state_valid(0xFFFFFFFF));
  EXPECT_EQ(mig_state_name(static_cast<MigState>(8)), "INVALID(8)");
}

TEST(MigState, NumbersMatchTheUapi) {
  EXPECT_EQ(static_cast<uint32_t>(MigState::kStopCopy), uint32_t{VFIO_DEVICE_STATE_STOP_COPY});
  EXPECT_EQ(static_cast<uint32_t>(MigState::kRunningP2P), uint32_t{VFIO_DEVICE_STATE_RUNNING_P2P});
}

TEST(MigFlags, Text) {
  EXPECT_EQ(mig_flags_text(0), "none");
  EXPECT_EQ(mig_flags_text(VFIO_MIGRATION_STOP_COPY), "STOP_COPY");
  EXPECT_EQ(mig_flags_text(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY),
            "STOP_COPY|P2P|PRE_COPY");
  EXPECT_EQ(mig_flags_text(VFIO_MIGRATION_P2P | 0x100), "P2P|0x100");
}

TEST(V1State, EveryCombination) {
  EXPECT_EQ(v1_state_name(0), "STOP");
  EXPECT_EQ(v1_state_name(1), "RUNNING");
  EXPECT_EQ(v1_state_name(2), "STOP_COPY");
  EXPECT_EQ(v1_state_name(3), "PRE_COPY");
  EXPECT_EQ(v1_state_name(4), "RESUMING");
  EXPECT_EQ(v1_state_name(5), "INVALID(5)");
  EXPECT_EQ(v1_state_name(6), "ERROR");
  EXPECT_EQ(v1_state_name(7), "INVALID(7)");
}

TEST(V1State, ReservedBitsIgnored) {
  EXPECT_EQ(v1_state_name(0xFFFFFFF8u | 1), "RUNNING");
  EXPECT_EQ(v1_state_name(0x100 | 4), "RESUMING");
}

}  // namespace
}  // namespace mdevmig::vfio
