#include "migration/engine/guest_pages.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

namespace mdevmig::engine {

GuestPageSender::GuestPageSender(std::span<const std::byte> memory, uint64_t page_size,
                                 bool skip_unchanged)
    : memory_(memory), page_size_(page_size) {
  MDEVMIG_CHECK(page_size > 0 && memory.size() % page_size == 0, "guest memory of %zu bytes",
                memory.size());
  if (skip_unchanged) hasher_.emplace(page_size, memory.size());
}

Result<GuestPageSender::Counts> GuestPageSender::send(const dirty::Bitmap& pages,
                                                      uint32_t iteration, std::size_t batch,
                                                      schema::Encoder& enc, const Sink& out) {
  MDEVMIG_CHECK(pages.size() == this->pages(), "dirty bitmap of %llu pages, memory has %llu",
                static_cast<unsigned long long>(pages.size()),
                static_cast<unsigned long long>(this->pages()));
  const uint64_t ps = page_size_;
  const uint64_t per_msg = std::max<uint64_t>(1, batch / ps);
  std::vector<std::byte> buf;
  buf.reserve(per_msg * ps);
  schema::WireGuestPages msg;
  msg.iteration = iteration;
  uint64_t in_msg = 0;
  Counts counts;
  Result<void> status = ok();
  auto flush_msg = [&] {
    if (in_msg == 0 || !status.ok()) return;
    msg.data = buf;
    status = out(enc.wire_guest_pages(msg));
    counts.sent += in_msg;
    in_msg = 0;
    msg.runs.clear();
    buf.clear();
  };
  // Adds pages [first, first + n), their bytes already at the end of buf, to the message.
  auto add_run = [&](uint64_t first, uint64_t n) {
    if (!msg.runs.empty() && msg.runs.back().first + msg.runs.back().count == first) {
      msg.runs.back().count += static_cast<uint32_t>(n);
    } else {
      msg.runs.push_back({first, static_cast<uint32_t>(n)});
    }
    in_msg += n;
    if (in_msg == per_msg) flush_msg();
  };
  pages.for_each_range([&](dirty::PageRange r) {
    while (r.count > 0 && status.ok()) {
      if (!hasher_) {
        const uint64_t n = std::min(r.count, per_msg - in_msg);
        const std::byte* src = memory_.data() + r.first * ps;
        buf.insert(buf.end(), src, src + n * ps);
        const uint64_t first = r.first;
        r.first += n;
        r.count -= n;
        add_run(first, n);
        continue;
      }
      // One page at a time: copy, hash the copy, keep it only if it changed.
      const std::size_t at = buf.size();
      const std::byte* src = memory_.data() + r.first * ps;
      buf.insert(buf.end(), src, src + ps);
      const uint64_t p = r.first;
      ++r.first;
      --r.count;
      if (hasher_->update(p, std::span<const std::byte>(buf).subspan(at, ps))) {
        add_run(p, 1);
      } else {
        buf.resize(at);
        ++counts.skipped;
      }
    }
  });
  flush_msg();
  MDEVMIG_TRY(status);
  return counts;
}

Result<uint64_t> apply_guest_pages(std::span<std::byte> memory, uint64_t page_size,
                                   const schema::WireGuestPages& msg) {
  const uint64_t pages = memory.size() / page_size;
  std::size_t at = 0;
  uint64_t written = 0;
  for (const schema::PageRun& r : msg.runs) {
    if (r.first >= pages || r.count > pages - r.first) {
      return Error::make_verdict(schema::kCorruptErrno, "receive guest pages",
                                 "run beyond guest memory");
    }
    std::memcpy(memory.data() + r.first * page_size, msg.data.data() + at, r.count * page_size);
    at += r.count * page_size;
    written += r.count;
  }
  return written;
}

}  // namespace mdevmig::engine
