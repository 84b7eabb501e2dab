// The --json contract of every subcommand: one object on stdout whose first key is
// "schema_version" (bumped when a key changes meaning or goes away; new keys do not bump
// it), keys in a fixed order (as each command builds them), 64-bit hashes as the same
// 16 hex digits the text output prints, times as ISO 8601 UTC strings (with the raw
// nanoseconds as a decimal string beside them: they exceed 2^53), and with --json an
// error is such an object too (report_error in device_arg.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "migration/engine/savefile.h"

namespace mdevmig::cli {

using Json = nlohmann::ordered_json;

/// The version of every --json document's layout.
inline constexpr int kJsonSchemaVersion = 1;

/// A new --json document: {"schema_version": 1, "command": cmd}.
[[nodiscard]] Json json_document(std::string_view cmd);
/// `body` (a report built elsewhere, its keys sorted) under the document's first keys.
[[nodiscard]] Json json_document(std::string_view cmd, const nlohmann::json& body);
/// A document as printed: indented by 2, and bytes that are not UTF-8 (a string read
/// from a damaged file) replaced by U+FFFD rather than an exception.
[[nodiscard]] std::string json_text(const Json& j);
/// An XXH3 as text and JSON print it: 16 lower-case hex digits.
[[nodiscard]] std::string hash_text(uint64_t h);
/// Nanoseconds since the epoch as ISO 8601 UTC, e.g. "2026-12-04T06:51:20.123456789Z".
[[nodiscard]] std::string iso8601(uint64_t unix_ns);

/// Whether errors are printed as JSON (on stdout, besides the line on stderr): set by
/// main() when the command line has --json before any `--`.
void set_json_errors(bool on);
[[nodiscard]] bool json_errors();

/// The reports of save and restore (their --json output).
[[nodiscard]] Json save_json(const std::string& device, const std::string& file,
                             const engine::SaveReport& r, bool stopped);
[[nodiscard]] Json restore_json(const std::string& device, const std::string& file,
                                schema::Channel channel, const engine::RestoreReport& r,
                                double verify_s, bool stopped);

}  // namespace mdevmig::cli
