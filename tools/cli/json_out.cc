// The --json helpers every command shares (json_out.h).
#include "tools/cli/json_out.h"

#include <cinttypes>
#include <cstdio>
#include <ctime>

namespace mdevmig::cli {

namespace {
bool g_json_errors = false;
}  // namespace

void set_json_errors(bool on) { g_json_errors = on; }
bool json_errors() { return g_json_errors; }

Json json_document(std::string_view cmd) {
  Json j;
  j["schema_version"] = kJsonSchemaVersion;
  j["command"] = std::string(cmd);
  return j;
}

// GCC 12 sees an uninitialized member in nlohmann's object iterators once inlined here
// (a false positive: the object is parsed and complete).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
Json json_document(std::string_view cmd, const nlohmann::json& body) {
  Json j = json_document(cmd);
  // The same keys, after the document's own; text that is not UTF-8 (a file name) gets
  // U+FFFD where JSON cannot carry it, as in json_text().
  j.update(Json::parse(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
  return j;
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

std::string json_text(const Json& j) {
  return j.dump(2, ' ', false, Json::error_handler_t::replace);
}

std::string hash_text(uint64_t h) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64, h);
  return buf;
}

std::string iso8601(uint64_t unix_ns) {
  const auto secs = static_cast<std::time_t>(unix_ns / 1'000'000'000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[48];
  const std::size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%09" PRIu64 "Z", unix_ns % 1'000'000'000);
  return buf;
}

}  // namespace mdevmig::cli
