// What a migration must carry, read from one of our instances through VFIO: device
// memory (XXH3), the scratch registers and the interrupt mask; and a known state to write.
#pragma once

#include <linux/mdevmig.h>

#include <cstdint>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/open_instance.h"
#include "migration/vfio/device.h"
#include "migration/vfio/mig_state.h"

namespace mdevmig::lab {

inline uint32_t reg(const vfio::Device& dev, uint32_t off) {
  auto r = dev.read_as<uint32_t>(kBar0, off);
  EXPECT_TRUE(r.ok());
  return r.ok() ? *r : 0xdeadbeef;
}

inline vfio::MigState state(const vfio::Device& d) {
  auto s = d.mig_state();
  EXPECT_TRUE(s.ok());
  return s.ok() ? *s : vfio::MigState::kError;
}

// Random device memory (from `seed`) and some state in registers.
inline void scribble(const vfio::Device& dev, uint64_t size, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> buf(size / 8);
  for (auto& x : buf) x = rng();
  ASSERT_TRUE(dev.write(kBar2, 0, std::as_bytes(std::span(buf))).ok());
  for (uint32_t i = 0; i < MDEVMIG_NR_SCRATCH; ++i) {
    ASSERT_TRUE(
        dev.write_as(kBar0, MDEVMIG_REG_SCRATCH(i), static_cast<uint32_t>(seed * 1000 + i)).ok());
  }
  ASSERT_TRUE(dev.write_as(kBar0, MDEVMIG_REG_INT_MASK, uint32_t{0x6}).ok());
}

// The migrated state of a device as one line of text: it can be compared with another
// device's, here or on another host.
inline std::string fingerprint(const vfio::Device& dev, uint64_t size) {
  std::ostringstream s;
  s << "mem " << std::hex << mem_hash(dev, size);
  for (uint32_t i = 0; i < MDEVMIG_NR_SCRATCH; ++i)
    s << " scratch" << i << " " << reg(dev, MDEVMIG_REG_SCRATCH(i));
  s << " int_mask " << reg(dev, MDEVMIG_REG_INT_MASK);
  return s.str();
}

inline void expect_same_state(const vfio::Device& a, const vfio::Device& b, uint64_t size) {
  EXPECT_EQ(fingerprint(a, size), fingerprint(b, size)) << "device memory or registers differ";
}

}  // namespace mdevmig::lab
