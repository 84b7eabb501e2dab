// Lab tests that run on both hosts of the two-host lab (tools/lab/pair.sh): which side
// this is, and the files the two sides rendezvous through in the shared folder.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace mdevmig::lab {

// This host, from the environment pair.sh gives the job.
struct PairHost {
  std::string role;   // "a" or "b"
  std::string addr;   // 192.0.2.1 or 192.0.2.2
  std::string peer;   // the other's address
  std::string share;  // the shared folder
  [[nodiscard]] std::string peer_role() const { return role == "a" ? "b" : "a"; }
  [[nodiscard]] bool valid() const;
};
PairHost pair_host();

// The peer wrote PEER.failed (it or pair.sh: its job failed).
bool peer_failed(const PairHost& h);
// Writes the file `name` whole (a temporary name, then renamed); a gtest failure if not.
void put(const PairHost& h, const std::string& name, const std::string& text);
// Waits for the peer's file `name` and returns its text; nullopt (with a gtest failure)
// when the peer says it failed, or after `limit`.
std::optional<std::string> take(const PairHost& h, const std::string& name,
                                std::chrono::seconds limit);

}  // namespace mdevmig::lab
