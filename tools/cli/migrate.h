// Parts of `mdevmig migrate`: the command line, checked into a plan (migrate_plan.cc);
// the report, as text and JSON (migrate_report.cc); the three roles (migrate.cc).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "migration/engine/channel.h"
#include "migration/engine/session.h"
#include "migration/io/net.h"
#include "migration/io/tls.h"
#include "tools/cli/args.h"
#include "tools/cli/device_arg.h"
#include "tools/cli/migrate_workload.h"
#include "tools/cli/report_arg.h"

namespace mdevmig::cli {

/// A migrate command line with every value checked, before a device is opened or a
/// socket made. Exactly one role: `listen` (destination), `to_spec` (same host) or
/// `where` without `listen` (source).
struct MigratePlan {
  engine::ChannelPreference channel = engine::ChannelPreference::kAuto;
  uint64_t downtime_ms = 0;
  uint64_t max_iterations = 0;
  double max_precopy_s = 0;
  uint64_t timeout_s = 0;  ///< peer silence that fails the migration
  WorkloadConfig workload;
  uint64_t guest_bytes = 0;  ///< 0: no guest memory
  uint64_t guest_iova = 0;
  std::optional<std::string> from, to, listen;  ///< as given
  std::optional<DeviceSpec> to_spec;            ///< --to when it names a device
  std::optional<io::HostPort> where;  ///< where the source connects or the destination listens
  std::optional<io::TlsCredentials> creds;
  std::optional<std::string> tls_hostname;
  std::optional<ReportFile> report_file;
};

/// The usage, description and options of `mdevmig migrate`.
[[nodiscard]] Args migrate_args();
/// Checks what migrate_args() parsed; a usage error naming the flag otherwise.
[[nodiscard]] Result<MigratePlan> parse_migrate_plan(const Args& args);

/// The progress line of one pre-copy iteration (no downtime estimate until the policy
/// has one).
[[nodiscard]] std::string iteration_line(const engine::IterationStats& s);
/// The report of a migration as --json prints it (without the document's first keys).
[[nodiscard]] nlohmann::json report_json(const engine::MigrationReport& r);
/// The "tls" key of a report between processes: null for plain TCP.
[[nodiscard]] nlohmann::json tls_json(const std::optional<io::TlsInfo>& tls, double setup_s);
/// The report as text on stdout; `role` is "source", "destination" or "same host".
void print_report(const engine::MigrationReport& r, const char* role);
/// The transport line of a report between processes.
void print_tls(const std::optional<io::TlsInfo>& tls);

}  // namespace mdevmig::cli
