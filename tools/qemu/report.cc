#include "tools/qemu/report.h"

#include <cinttypes>
#include <cstdio>
#include <vector>

namespace mdevmig::qemu {

std::string format_bytes(double bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, kUnits[u]);
  return buf;
}

std::string pass_table(const MigrationOutcome& m) {
  std::string s =
      "  pass   t (ms)  RAM pages   RAM bytes   device pages  device bytes  tracker dirty\n";
  char buf[200];
  for (const auto& p : m.passes) {
    std::snprintf(buf, sizeof buf,
                  "  %4u  %7.0f  %9" PRIu64 "  %10s  %13" PRIu64 "  %12s  %13" PRIu64 "\n", p.pass,
                  p.t_ms, p.ram_pages, format_bytes(static_cast<double>(p.ram_bytes)).c_str(),
                  p.device_pages, format_bytes(static_cast<double>(p.device_bytes)).c_str(),
                  p.device_dirty_pages);
    s += buf;
  }
  return s;
}

std::string device_pass_table(const MigrationOutcome& m, uint64_t device_mem) {
  struct Group {
    std::string name;
    double t0 = 0, t1 = 0;
    uint64_t dirty = 0, dev_bytes = 0, ram_pages = 0, ram_bytes = 0;
  };
  std::vector<Group> groups;
  uint64_t prev_tracker = 0;
  double prev_t = 0;
  for (const auto& p : m.passes) {
    if (groups.empty() || p.device_dirty_pages < prev_tracker) {
      Group g;
      g.name = groups.empty() ? "initial copy" : "dirty pass " + std::to_string(groups.size());
      g.dirty = groups.empty() ? device_mem / 4096 : prev_tracker;
      g.t0 = prev_t;
      groups.push_back(g);
    }
    Group& g = groups.back();
    g.t1 = p.t_ms;
    g.dev_bytes += p.device_bytes;
    g.ram_pages += p.ram_pages;
    g.ram_bytes += p.ram_bytes;
    prev_tracker = p.device_dirty_pages;
    prev_t = p.t_ms;
  }
  std::string s = "  pass            duration   dirty pages   device sent            RAM sent\n";
  char buf[240];
  for (const auto& g : groups) {
    std::snprintf(buf, sizeof buf,
                  "  %-14s %7.0f ms  %11" PRIu64 "   %-10s (%6" PRIu64 " p)  %-10s (%6" PRIu64
                  " p)\n",
                  g.name.c_str(), g.t1 - g.t0, g.dirty,
                  format_bytes(static_cast<double>(g.dev_bytes)).c_str(), g.dev_bytes / 4096,
                  format_bytes(static_cast<double>(g.ram_bytes)).c_str(), g.ram_pages);
    s += buf;
  }
  if (m.status == "completed") {
    const uint64_t dev_down = m.wire_downtime_bytes > m.ram_downtime_bytes
                                  ? m.wire_downtime_bytes - m.ram_downtime_bytes
                                  : 0;
    // Stop-copy sends what the last pass had not sent yet, the final dirty pages and
    // the device's registers and engine state.
    std::snprintf(buf, sizeof buf, "  %-14s %7.0f ms  %11s   %-10s (%6" PRIu64 " p)  %-10s\n",
                  "stop-copy", m.downtime_ms, "-",
                  format_bytes(static_cast<double>(dev_down)).c_str(), dev_down / 4096,
                  format_bytes(static_cast<double>(m.ram_downtime_bytes)).c_str());
    s += buf;
  }
  return s;
}

std::string migration_summary(const MigrationOutcome& m, bool device) {
  std::string s;
  char buf[400];
  if (m.status == "completed") {
    std::snprintf(buf, sizeof buf,
                  "  completed in %.0f ms (QEMU total-time), downtime %.0f ms (of which the "
                  "harness stopping its qtest "
                  "vCPU %.0f ms), setup %.0f ms\n",
                  m.total_ms, m.downtime_ms, m.harness_pause_ms, m.setup_ms);
  } else {
    std::snprintf(buf, sizeof buf, "  %s after %.0f ms%s%s\n", m.status.c_str(), m.wall_ms,
                  m.error.empty() ? "" : ": ", m.error.c_str());
  }
  s += buf;
  if (m.fault != FaultKind::kNone) {
    std::snprintf(
        buf, sizeof buf, "  fault %s: %s\n", fault_name(m.fault),
        m.fault_fired ? m.fault_note.c_str() : "did not fire (the migration ended first)");
    s += buf;
  }
  std::snprintf(buf, sizeof buf, "  stream %s: pre-copy %s, after the VM stopped %s\n",
                format_bytes(static_cast<double>(m.wire_bytes)).c_str(),
                format_bytes(static_cast<double>(m.wire_precopy_bytes)).c_str(),
                format_bytes(static_cast<double>(m.wire_downtime_bytes)).c_str());
  s += buf;
  std::snprintf(buf, sizeof buf,
                "  RAM %s (pre-copy %s, stop-copy %s; %" PRIu64 " normal, %" PRIu64
                " zero pages), %" PRIu64 " dirty syncs\n",
                format_bytes(static_cast<double>(m.ram_transferred)).c_str(),
                format_bytes(static_cast<double>(m.ram_precopy_bytes)).c_str(),
                format_bytes(static_cast<double>(m.ram_downtime_bytes)).c_str(), m.ram_normal_pages,
                m.ram_zero_pages, m.ram_dirty_syncs);
  s += buf;
  if (!device) return s;
  const uint64_t dev_pre =
      m.wire_precopy_bytes > m.ram_precopy_bytes ? m.wire_precopy_bytes - m.ram_precopy_bytes : 0;
  const uint64_t dev_down = m.wire_downtime_bytes > m.ram_downtime_bytes
                                ? m.wire_downtime_bytes - m.ram_downtime_bytes
                                : 0;
  std::snprintf(
      buf, sizeof buf,
      "  device %s (mdevmig/migration bytes_sent; on the wire: pre-copy %s, stop-copy %s), "
      "%" PRIu64 " pre-copy iterations, %" PRIu64 " pages dirty in the last\n",
      format_bytes(static_cast<double>(m.device_bytes)).c_str(),
      format_bytes(static_cast<double>(dev_pre)).c_str(),
      format_bytes(static_cast<double>(dev_down)).c_str(), m.device_iterations,
      m.device_dirty_last_pass);
  s += buf;
  return s;
}

}  // namespace mdevmig::qemu
