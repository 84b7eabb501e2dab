// The control channel between `mdevmig stress --mode local` and the processes that
// play its VMs: one JSON object per SOCK_SEQPACKET record, with an fd attached where a
// connection is handed over; and running this binary's own subcommands on a device.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/fd.h"
#include "base/result.h"

namespace mdevmig::cli::local {

/// Sends `j` on `fd`, with `pass_fd` attached if it is not -1.
[[nodiscard]] Result<void> send_msg(int fd, const nlohmann::json& j, int pass_fd = -1);
/// The next message; EPIPE once the peer is gone, ETIMEDOUT after `timeout`. A passed
/// fd lands in `fd_out` (closed if it is null).
[[nodiscard]] Result<nlohmann::json> recv_msg(int fd, std::chrono::milliseconds timeout,
                                              UniqueFd* fd_out = nullptr);
/// {"ok": false, "error": ...}
[[nodiscard]] nlohmann::json error_json(const Error& e);
/// Runs this binary (`mdevmig ARGS`) with `dev_fd` inherited; its error line on failure.
[[nodiscard]] Result<void> run_self(std::vector<std::string> args, int dev_fd);

}  // namespace mdevmig::cli::local
