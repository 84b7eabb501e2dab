// TLS for the migration socket: a GnuTLS handshake with mutual X.509 authentication
// (TLS 1.3 only), then the session's record keys handed to kernel TLS, so the io_uring
// data path (uring.h) keeps sending and receiving plaintext on the same socket while
// the kernel encrypts. There is no user-space record path: without kernel TLS the
// connection fails, it never carries plaintext.
//
// Credentials come from a directory laid out like QEMU's tls-creds-x509 `dir`:
//   ca-cert.pem                      the CA both sides verify the peer against
//   server-cert.pem, server-key.pem  the listening side (destination)
//   client-cert.pem, client-key.pem  the connecting side (source)
//
// After the handshake the listener sends one confirmation record through GnuTLS and
// the connecting side reads it before either side switches to the kernel: in TLS 1.3
// the client's handshake ends before the server has checked the client's certificate,
// so without it a rejected source would learn of the rejection only as an undecodable
// alert on its kernel socket.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "base/result.h"

namespace mdevmig::io {

class Cancel;

/// errno that classifies "the peer failed authentication, or refused ours" (a verdict).
inline constexpr int kTlsAuthErrno = EKEYREJECTED;
/// errno that classifies "the peer does not speak TLS (or speaks it and we do not)".
inline constexpr int kTlsProtocolErrno = EPROTO;

enum class TlsRole { kServer, kClient };

/// The file names of a credentials directory for `role`.
struct TlsFiles {
  std::string ca, cert, key;
};
[[nodiscard]] TlsFiles tls_files(const std::string& dir, TlsRole role);

/// Loaded, checked credentials (move-only).
class TlsCredentials {
 public:
  /// Reads and parses the CA, certificate and key of `role` in `dir`; fails with
  /// EINVAL naming the file and what is wrong (missing, unreadable, not PEM, key not
  /// matching the certificate, no CA certificate).
  [[nodiscard]] static Result<TlsCredentials> load(const std::string& dir, TlsRole role);
  ~TlsCredentials();
  TlsCredentials(TlsCredentials&&) noexcept;
  TlsCredentials& operator=(TlsCredentials&&) noexcept;

  [[nodiscard]] TlsRole role() const noexcept { return role_; }
  [[nodiscard]] const std::string& dir() const noexcept { return dir_; }

 private:
  struct Impl;
  TlsCredentials(std::unique_ptr<Impl> impl, TlsRole role, std::string dir);
  std::unique_ptr<Impl> impl_;
  TlsRole role_;
  std::string dir_;
  friend class TlsSession;
};

struct TlsOptions {
  /// Client: the name the listener's certificate must carry (DNS name or IP address).
  std::string hostname;
  /// For messages: who the peer is ("192.0.2.2:4444").
  std::string peer;
  /// Bounds the whole handshake.
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};
  /// Not owned; the handshake fails with EINTR once it fires.
  const Cancel* cancel = nullptr;
};

/// What was negotiated.
struct TlsInfo {
  std::string version;       ///< "TLS1.3"
  std::string cipher;        ///< "AES-256-GCM"
  std::string peer_subject;  ///< the peer certificate's distinguished name
};

/// A completed handshake on a connected stream socket, before kernel TLS.
class TlsSession {
 public:
  /// Runs the handshake and the confirmation (see the file comment) on `fd`, which
  /// must stay open. Fails with kTlsAuthErrno when either side's certificate is not
  /// accepted, kTlsProtocolErrno when the peer does not speak TLS 1.3, ETIMEDOUT,
  /// EINTR (cancel) or a socket error.
  [[nodiscard]] static Result<TlsSession> handshake(int fd, const TlsCredentials& creds,
                                                    const TlsOptions& opt);
  ~TlsSession();
  TlsSession(TlsSession&&) noexcept;
  TlsSession& operator=(TlsSession&&) noexcept;

  [[nodiscard]] const TlsInfo& info() const noexcept { return info_; }

  /// Hands both directions to kernel TLS (TCP_ULP "tls", TLS_TX and TLS_RX); from
  /// then on plain send/recv on the fd carry the session's records. Fails (ENOENT,
  /// ENOPROTOOPT, ...) when the kernel has no TLS (module `tls` not loaded) or not this
  /// cipher; the socket must then be closed: its TLS state is unusable.
  [[nodiscard]] Result<void> to_kernel();

 private:
  struct Impl;
  explicit TlsSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  TlsInfo info_;
};

/// Handshake and kernel TLS in one step: what `mdevmig migrate --tls` does.
[[nodiscard]] Result<TlsInfo> secure_socket(int fd, const TlsCredentials& creds,
                                            const TlsOptions& opt);

}  // namespace mdevmig::io
