#include "fuzz/kernel_state.h"

#include <fcntl.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <vector>

#include "common/sysfs.h"
#include "tools/lab/kernel_reports.h"

namespace mdevmig::fuzz {

namespace {

// The lab verdict's patterns (tools/lab/kernel-reports.ere).
const std::regex& bad_line() {
  static const std::regex re(lab::kKernelReportsEre, std::regex::extended | std::regex::nosubs);
  return re;
}

}  // namespace

KernelLog::KernelLog() {
  fd_ = ::open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd_ >= 0) ::lseek(fd_, 0, SEEK_END);
}

KernelLog::~KernelLog() {
  if (fd_ >= 0) ::close(fd_);
}

std::string KernelLog::poll() {
  if (fd_ < 0) return {};
  std::string found;
  char rec[8192];
  for (;;) {
    const ssize_t n = ::read(fd_, rec, sizeof rec - 1);
    if (n < 0) {
      if (errno == EPIPE) {  // records were overwritten before we read them
        if (found.empty()) found = "(kernel log records lost before they were read)";
        continue;
      }
      break;  // EAGAIN: nothing more
    }
    rec[n] = '\0';
    const char* text = std::strchr(rec, ';');
    std::string line = text ? std::string(text + 1) : std::string(rec);
    if (auto nl = line.find('\n'); nl != std::string::npos) line.resize(nl);
    if (found.empty() && std::regex_search(line, bad_line())) found = line;
  }
  // A lost-records note alone is not a bug report; a real bad line wins over it.
  return found.rfind("(kernel log", 0) == 0 ? std::string() : found;
}

void KernelLog::mark(const std::string& text) {
  lab::write_file("/dev/kmsg", "<6>uapi_fuzz_lab: " + text + "\n");
}

namespace {

// Drops the page cache, dentries and inodes and shrinks every slab cache, then waits
// for an RCU grace period. Dentries, inodes, their LSM blobs, kernfs nodes and radix-tree
// nodes are freed by RCU callbacks: until those ran, what drop_caches released still
// counts as active slab objects. membarrier(GLOBAL) returns after a grace period.
void drop_and_shrink() {
  ::sync();
  lab::write_file("/proc/sys/vm/drop_caches", "3");
  for (const auto& cache : lab::list_dir("/sys/kernel/slab"))
    lab::write_file("/sys/kernel/slab/" + cache + "/shrink", "1");
  ::syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0);
}

std::map<std::string, int64_t> read_meminfo() {
  std::map<std::string, int64_t> mi;
  std::ifstream meminfo("/proc/meminfo");
  std::string key, line;
  int64_t value;
  while (std::getline(meminfo, line)) {
    std::istringstream l(line);
    if (l >> key >> value) mi[key.substr(0, key.size() - 1)] = value;
  }
  return mi;
}

}  // namespace

MemSnapshot take_mem_snapshot() {
  // The callbacks of a grace period run after it, in batches, later still on a starved
  // vCPU: measured on a busy machine, a 6.12 guest still held +4.9 MiB of freed dentries,
  // inodes and kernfs nodes when SUnreclaim was read right after drop_caches. So the
  // figure is read once a second until it stops falling (two readings within 64 KiB),
  // for at most 30 s.
  MemSnapshot s;
  std::map<std::string, int64_t> mi;
  for (int i = 0; i < 30; ++i) {
    drop_and_shrink();
    auto now = read_meminfo();
    const bool settled = i > 0 && now["SUnreclaim"] >= mi["SUnreclaim"] - 64;
    if (i == 0) s.first_unreclaimable_kib = now["SUnreclaim"];
    mi = std::move(now);
    s.settle_rounds = i + 1;
    if (settled) break;
    ::sleep(1);
  }
  std::string line;
  s.slab_unreclaimable_kib = mi["SUnreclaim"];
  s.slub_debug = lab::read_file("/sys/kernel/slab/kmalloc-64/red_zone").value_or("0") == "1";
  s.vmalloc_kib = mi["VmallocUsed"];
  // Free pages parked on the per-cpu lists are not in MemFree: count them as free
  // (/proc/zoneinfo, "count:" of every cpu's pageset), or they swing the figure by MiBs.
  int64_t pcp_pages = 0;
  std::ifstream zoneinfo("/proc/zoneinfo");
  while (std::getline(zoneinfo, line)) {
    std::istringstream l(line);
    std::string word;
    int64_t n = 0;
    if (l >> word && word == "count:" && l >> n) pcp_pages += n;
  }
  s.unaccounted_kib = mi["MemTotal"] - mi["MemFree"] - pcp_pages * 4 - mi["Buffers"] -
                      mi["Cached"] - mi["AnonPages"] - mi["Slab"] - mi["PageTables"] -
                      mi["KernelStack"] - mi["VmallocUsed"] - mi["Percpu"];

  std::ifstream slabinfo("/proc/slabinfo");
  while (std::getline(slabinfo, line)) {
    if (line.empty() || line[0] == '#' || line.rfind("slabinfo", 0) == 0) continue;
    std::istringstream l(line);
    std::string name;
    int64_t active = 0, total = 0, objsize = 0;
    if (l >> name >> active >> total >> objsize) s.slab_bytes[name] = active * objsize;
  }
  return s;
}

bool compare_mem(const MemSnapshot& before, const MemSnapshot& after, std::string* report) {
  // Limits, see tests/lab/fuzz/README.md ("Leak check"): well above what an idle guest
  // and the fuzzer's own churn move between two snapshots, well below what one leaked
  // object per sequence adds up to over a CI run.
  // With slub_debug (every lab boot where the kernel has it) each object carries red
  // zones and two stack tracks, which about doubles what the same churn, or the same
  // leak, weighs in SUnreclaim: the limit doubles with it. And with it, slab pages that
  // the sysfs churn of a fast run leaves partly used grow with the number of sequences:
  // 6.12 on a quiet machine ran 1996 sequences in 150 s and moved +5.2 MiB with no leak
  // (kernfs, lsm_inode and radix-tree caches), so the limit is 8 MiB there.
  constexpr int64_t kVmallocLimit = 512, kUnaccountedLimit = 16384;
  const int64_t kSlabLimit = after.slub_debug ? 8192 : 2048;
  const int64_t ds = after.slab_unreclaimable_kib - before.slab_unreclaimable_kib;
  const int64_t dv = after.vmalloc_kib - before.vmalloc_kib;
  const int64_t du = after.unaccounted_kib - before.unaccounted_kib;
  std::ostringstream o;
  o << "SUnreclaim " << (ds >= 0 ? "+" : "") << ds << " KiB (limit " << kSlabLimit
    << "), VmallocUsed " << (dv >= 0 ? "+" : "") << dv << " KiB (limit " << kVmallocLimit
    << "), unaccounted " << (du >= 0 ? "+" : "") << du << " KiB (limit " << kUnaccountedLimit
    << ")";
  const int64_t first = after.first_unreclaimable_kib - before.slab_unreclaimable_kib;
  o << "; SUnreclaim settled after " << after.settle_rounds << " reading(s), the first at "
    << (first >= 0 ? "+" : "") << first << " KiB";
  const bool ok = ds <= kSlabLimit && dv <= kVmallocLimit && du <= kUnaccountedLimit;
  {
    std::vector<std::pair<int64_t, std::string>> grown;
    for (const auto& [name, bytes] : after.slab_bytes) {
      auto it = before.slab_bytes.find(name);
      const int64_t d = bytes - (it == before.slab_bytes.end() ? 0 : it->second);
      if (d > 0) grown.emplace_back(d, name);
    }
    std::sort(grown.rbegin(), grown.rend());
    o << "; slab caches grown most:";
    for (size_t i = 0; i < grown.size() && i < (ok ? 4u : 10u); ++i)
      o << " " << grown[i].second << " +" << grown[i].first / 1024 << "K";
  }
  *report = o.str();
  return ok;
}

}  // namespace mdevmig::fuzz
