// The report of `mdevmig migrate`: the progress line of an iteration, and the report of a
// finished migration as text and as JSON.
#include <cinttypes>
#include <cstdio>
#include <string>

#include "tools/cli/device_arg.h"
#include "tools/cli/json_out.h"
#include "tools/cli/migrate.h"

namespace mdevmig::cli {

std::string iteration_line(const engine::IterationStats& s) {
  char est[48] = "no downtime estimate yet";
  if (s.est_downtime_s >= 0)
    std::snprintf(est, sizeof(est), "est. downtime %.1f ms", s.est_downtime_s * 1000);
  char line[320];
  std::snprintf(line, sizeof(line),
                "iteration %u: sent %s + %" PRIu64 " guest pages, pending %s, %.1f MiB/s, %s (%s)",
                s.iteration, human_bytes(static_cast<double>(s.device_bytes)).c_str(),
                s.guest_pages, human_bytes(static_cast<double>(s.pending_bytes)).c_str(),
                s.bandwidth_bps / (1 << 20), est, s.verdict.c_str());
  return line;
}

nlohmann::json tls_json(const std::optional<io::TlsInfo>& tls, double setup_s) {
  if (!tls) return nullptr;
  return {{"version", tls->version},
          {"cipher", tls->cipher},
          {"peer", tls->peer_subject},
          {"kernel", true},
          {"setup_s", setup_s}};
}

nlohmann::json report_json(const engine::MigrationReport& r) {
  nlohmann::json its = nlohmann::json::array();
  for (const auto& s : r.log) {
    its.push_back({{"iteration", s.iteration},
                   {"device_bytes", s.device_bytes},
                   {"guest_pages", s.guest_pages},
                   {"guest_pages_skipped", s.guest_pages_skipped},
                   {"pending_bytes", s.pending_bytes},
                   {"seconds", s.seconds},
                   {"bandwidth_bps", s.bandwidth_bps},
                   {"arrival_bps", s.arrival_bps},
                   {"in_flight_bytes", s.in_flight_bytes},
                   {"dirty_rate_bps", s.dirty_rate_bps},
                   {"estimated_downtime_s",
                    s.est_downtime_s >= 0 ? nlohmann::json(s.est_downtime_s) : nlohmann::json()},
                   {"verdict", s.verdict}});
  }
  return {{"channel", schema::channel_name(r.channel)},
          {"iterations", r.iterations},
          {"switchover_reason", r.switchover_reason},
          {"total_s", r.total_s},
          {"precopy_s", r.precopy_s},
          {"downtime_s", r.downtime_s},
          {"switchover_fixed_s", r.switchover_fixed_s},
          {"estimated_downtime_s",
           r.estimated_downtime_s >= 0 ? nlohmann::json(r.estimated_downtime_s) : nlohmann::json()},
          {"downtime_target_s",
           r.downtime_target_s > 0 ? nlohmann::json(r.downtime_target_s) : nlohmann::json()},
          {"decision_to_stop_s", r.decision_to_stop_s},
          {"stopcopy_send_s", r.stopcopy_send_s},
          {"precopy_sync", r.precopy_sync},
          {"destination_finish_s", r.dest_finish_s},
          {"stopcopy_rate_bps", r.stopcopy_rate_bps},
          {"in_flight_bytes", r.in_flight_bytes},
          {"bytes",
           {{"precopy_device", r.precopy_device_bytes},
            {"precopy_guest", r.precopy_guest_bytes},
            {"stopcopy_device", r.stopcopy_device_bytes},
            {"stopcopy_guest", r.stopcopy_guest_bytes},
            {"guest_skipped_pages",
             {{"enabled", r.skip_unchanged_guest},
              {"precopy", r.precopy_guest_skipped_pages},
              {"stopcopy", r.stopcopy_guest_skipped_pages}}},
            {"stream", r.stream_bytes},
            {"wire", r.wire_bytes}}},
          {"stream_xxh3", hash_text(r.stream_xxh3)},
          {"log", its}};
}

void print_report(const engine::MigrationReport& r, const char* role) {
  std::printf("migration complete (%s, %s): %u iterations (%s)\n", role,
              schema::channel_name(r.channel), r.iterations, r.switchover_reason.c_str());
  std::printf("  total %.3f s, pre-copy %.3f s, downtime %.1f ms", r.total_s, r.precopy_s,
              r.downtime_s * 1000);
  if (r.estimated_downtime_s >= 0) {
    std::printf(" (estimated %.1f ms, of which %.1f ms fixed)", r.estimated_downtime_s * 1000,
                r.switchover_fixed_s * 1000);
  }
  std::printf("\n");
  std::printf("  pre-copy:  device %s, guest %s\n",
              human_bytes(static_cast<double>(r.precopy_device_bytes)).c_str(),
              human_bytes(static_cast<double>(r.precopy_guest_bytes)).c_str());
  std::printf("  stop-copy: device %s, guest %s\n",
              human_bytes(static_cast<double>(r.stopcopy_device_bytes)).c_str(),
              human_bytes(static_cast<double>(r.stopcopy_guest_bytes)).c_str());
  std::printf("  device stream %s (xxh3 %016" PRIx64 "), on the wire %s\n",
              human_bytes(static_cast<double>(r.stream_bytes)).c_str(), r.stream_xxh3,
              human_bytes(static_cast<double>(r.wire_bytes)).c_str());
}

void print_tls(const std::optional<io::TlsInfo>& tls) {
  if (!tls) {
    std::printf("  transport: plain TCP (not encrypted, peer not authenticated)\n");
  } else {
    std::printf("  transport: %s %s in the kernel, peer %s\n", tls->version.c_str(),
                tls->cipher.c_str(), tls->peer_subject.c_str());
  }
}

}  // namespace mdevmig::cli
