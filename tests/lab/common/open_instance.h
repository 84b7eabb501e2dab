// An mdev instance created for a lab test and opened through the VFIO client.
#pragma once

#include <xxhash.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/dma.h"
#include "common/instance.h"
#include "migration/vfio/mdev.h"

namespace mdevmig::lab {

struct OpenInstance {
  std::unique_ptr<Instance> inst;
  std::optional<vfio::OpenMdev> m;
  const vfio::Device& dev() const { return m->device; }
};

// Creates an instance of `type` on `parent` and opens it; `m` is empty on failure
// (which is reported as a test failure).
inline OpenInstance open_instance(const std::string& type,
                                  const std::string& parent = "mdevmig_sim0") {
  OpenInstance s;
  s.inst = std::make_unique<Instance>(parent, type);
  if (!s.inst->ok()) return s;
  auto m = vfio::open_mdev(s.inst->uuid());
  if (!m.ok()) {
    ADD_FAILURE() << m.error().message();
    return s;
  }
  s.m.emplace(std::move(m.value()));
  return s;
}

// XXH3 of the first `size` bytes of BAR2, read through the region (works in any mode).
inline uint64_t mem_hash(const vfio::Device& dev, uint64_t size) {
  std::vector<uint8_t> buf(size);
  auto r = dev.read(kBar2, 0, std::as_writable_bytes(std::span(buf)));
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
  return XXH3_64bits(buf.data(), buf.size());
}

}  // namespace mdevmig::lab
