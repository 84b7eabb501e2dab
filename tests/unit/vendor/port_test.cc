// vendor/port.h: little-endian helpers and the checkpointable XXH64, which must agree
// with the one-shot XXH64 (and so with the kernel's xxh64) however the input is split.
#include <xxhash.h>

#include <algorithm>
#include <vector>

#include <gtest/gtest.h>

#include "port.h"

namespace {

TEST(Port, LittleEndian) {
  uint8_t b[8];
  mdevmig_put_le64(b, 0x0102030405060708ull);
  EXPECT_EQ(b[0], 0x08);
  EXPECT_EQ(b[7], 0x01);
  EXPECT_EQ(mdevmig_get_le64(b), 0x0102030405060708ull);
  EXPECT_EQ(mdevmig_get_le32(b + 1), 0x04050607u);
  EXPECT_EQ(mdevmig_get_le16(b + 3), 0x0405u);
  mdevmig_put_le16(b, 0xbeef);
  mdevmig_put_le32(b + 2, 0xdeadc0de);
  EXPECT_EQ(mdevmig_get_le16(b), 0xbeef);
  EXPECT_EQ(mdevmig_get_le32(b + 2), 0xdeadc0deu);
}

TEST(Port, OneShotIsXxh64SeedZero) {
  std::vector<uint8_t> data(1000);
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<uint8_t>(i * 17);
  EXPECT_EQ(mdevmig_xxh64(data.data(), data.size()), XXH64(data.data(), data.size(), 0));
  EXPECT_EQ(mdevmig_xxh64(data.data(), 0), 0xef46db3751d8e999ull);  // XXH64 of nothing
}

TEST(Port, StreamingStateSurvivesAnySplit) {
  std::vector<uint8_t> data(777);
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<uint8_t>(i * 29 + 3);
  const uint64_t want = XXH64(data.data(), data.size(), 0);
  for (size_t piece : {1, 5, 31, 32, 33, 64, 100, 777}) {
    mdevmig_xxh64_state s;
    mdevmig_xxh64_reset(&s);
    for (size_t at = 0; at < data.size(); at += piece) {
      size_t n = std::min(piece, data.size() - at);
      // Round-trip the state through a copy each time, as a save/load would.
      mdevmig_xxh64_state copy = s;
      mdevmig_xxh64_update(&copy, data.data() + at, n);
      s = copy;
      EXPECT_EQ(s.total_len, at + n);
      EXPECT_EQ(s.memsize, (at + n) % 32);
    }
    EXPECT_EQ(mdevmig_xxh64_digest(&s), want) << piece;
  }
}

}  // namespace
