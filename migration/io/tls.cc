#include "migration/io/tls.h"

#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/socket.h>
#include <gnutls/x509.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "migration/io/cancel.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

namespace mdevmig::io {

namespace {

// TLS 1.3 with the AEAD ciphers Linux's kernel TLS implements (5.11+ for ChaCha20).
constexpr const char* kPriority =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305";
// The listener's confirmation: one byte, the format's version of it.
constexpr unsigned char kConfirm = 1;

std::string gnutls_text(int rc) { return gnutls_strerror(rc); }

Error creds_error(const std::string& file, const std::string& why) {
  return Error::make_verdict(EINVAL, "TLS credentials", file + ": " + why);
}

// Whether `path` is a readable regular file; the error names it.
Result<void> check_file(const std::string& path) {
  if (::access(path.c_str(), F_OK) != 0) return creds_error(path, "missing");
  if (::access(path.c_str(), R_OK) != 0) return creds_error(path, "not readable by this user");
  return ok();
}

}  // namespace

TlsFiles tls_files(const std::string& dir, TlsRole role) {
  const std::string d = dir.empty() || dir.back() == '/' ? dir : dir + "/";
  const char* who = role == TlsRole::kServer ? "server" : "client";
  return {d + "ca-cert.pem", d + who + "-cert.pem", d + who + "-key.pem"};
}

// ---- credentials ---------------------------------------------------------------------

struct TlsCredentials::Impl {
  gnutls_certificate_credentials_t cred = nullptr;
  ~Impl() {
    if (cred != nullptr) gnutls_certificate_free_credentials(cred);
  }
};

TlsCredentials::TlsCredentials(std::unique_ptr<Impl> impl, TlsRole role, std::string dir)
    : impl_(std::move(impl)), role_(role), dir_(std::move(dir)) {}
TlsCredentials::~TlsCredentials() = default;
TlsCredentials::TlsCredentials(TlsCredentials&&) noexcept = default;
TlsCredentials& TlsCredentials::operator=(TlsCredentials&&) noexcept = default;

Result<TlsCredentials> TlsCredentials::load(const std::string& dir, TlsRole role) {
  const TlsFiles f = tls_files(dir, role);
  for (const std::string* p : {&f.ca, &f.cert, &f.key}) MDEVMIG_TRY(check_file(*p));
  auto impl = std::make_unique<Impl>();
  int rc = gnutls_certificate_allocate_credentials(&impl->cred);
  if (rc < 0)
    return Error::make(ENOMEM, "gnutls_certificate_allocate_credentials", gnutls_text(rc));
  rc = gnutls_certificate_set_x509_trust_file(impl->cred, f.ca.c_str(), GNUTLS_X509_FMT_PEM);
  if (rc < 0) return creds_error(f.ca, "not a PEM certificate (" + gnutls_text(rc) + ")");
  if (rc == 0) return creds_error(f.ca, "holds no certificate");
  rc = gnutls_certificate_set_x509_key_file(impl->cred, f.cert.c_str(), f.key.c_str(),
                                            GNUTLS_X509_FMT_PEM);
  if (rc < 0) {
    return creds_error(f.cert, "cannot be used with " + f.key + " (" + gnutls_text(rc) + ")");
  }
  return TlsCredentials(std::move(impl), role, dir);
}

// ---- the handshake -------------------------------------------------------------------

struct TlsSession::Impl {
  gnutls_session_t s = nullptr;
  int fd = -1;
  ~Impl() {
    if (s != nullptr) gnutls_deinit(s);
  }
};

TlsSession::TlsSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TlsSession::~TlsSession() = default;
TlsSession::TlsSession(TlsSession&&) noexcept = default;
TlsSession& TlsSession::operator=(TlsSession&&) noexcept = default;

namespace {

// The fd non-blocking for the handshake, as it was afterwards (the data path blocks).
class NonBlocking {
 public:
  explicit NonBlocking(int fd) : fd_(fd), flags_(::fcntl(fd, F_GETFL)) {
    if (flags_ >= 0) ::fcntl(fd_, F_SETFL, flags_ | O_NONBLOCK);
  }
  ~NonBlocking() {
    if (flags_ >= 0) ::fcntl(fd_, F_SETFL, flags_);
  }
  NonBlocking(const NonBlocking&) = delete;
  NonBlocking& operator=(const NonBlocking&) = delete;

 private:
  int fd_;
  int flags_;
};

using Clock = std::chrono::steady_clock;

// Waits until GnuTLS can go on (its last call returned GNUTLS_E_AGAIN).
Result<void> wait_io(gnutls_session_t s, int fd, Clock::time_point deadline,
                     const TlsOptions& opt) {
  const short events = gnutls_record_get_direction(s) == 0 ? POLLIN : POLLOUT;
  pollfd p[2] = {{fd, events, 0}, {opt.cancel ? opt.cancel->fd() : -1, POLLIN, 0}};
  for (;;) {
    if (opt.cancel) MDEVMIG_TRY(opt.cancel->check("TLS handshake with " + opt.peer));
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      return Error::make(
          ETIMEDOUT, "TLS handshake",
          opt.peer + ": no answer within " + std::to_string(opt.timeout.count() / 1000) + " s");
    }
    const int rc = ::poll(p, 2, static_cast<int>(left.count()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return Error::from_errno("poll", "TLS handshake with " + opt.peer);
    if (rc > 0 && p[0].revents != 0) return ok();
  }
}

bool is_auth_alert(gnutls_alert_description_t a) {
  switch (a) {
    case GNUTLS_A_BAD_CERTIFICATE:
    case GNUTLS_A_UNSUPPORTED_CERTIFICATE:
    case GNUTLS_A_CERTIFICATE_REVOKED:
    case GNUTLS_A_CERTIFICATE_EXPIRED:
    case GNUTLS_A_CERTIFICATE_UNKNOWN:
    case GNUTLS_A_UNKNOWN_CA:
    case GNUTLS_A_ACCESS_DENIED:
    case GNUTLS_A_CERTIFICATE_REQUIRED:
      return true;
    default:
      return false;
  }
}

// One line for a failed GnuTLS call during the handshake or the confirmation.
Error handshake_error(gnutls_session_t s, int rc, const TlsOptions& opt, TlsRole role) {
  const std::string op = "TLS handshake with " + opt.peer;
  const char* other = role == TlsRole::kServer ? "source" : "destination";
  if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR || rc == GNUTLS_E_CERTIFICATE_ERROR) {
    const unsigned status = gnutls_session_get_verify_cert_status(s);
    gnutls_datum_t text{};
    std::string why = "its certificate is not trusted";
    if (status != 0 &&
        gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0) == 0) {
      why = std::string("its certificate is rejected: ") + reinterpret_cast<const char*>(text.data);
      gnutls_free(text.data);
    }
    return Error::make_verdict(kTlsAuthErrno, op,
                               "the " + std::string(other) + " failed authentication: " + why);
  }
  if (rc == GNUTLS_E_NO_CERTIFICATE_FOUND || rc == GNUTLS_E_CERTIFICATE_REQUIRED) {
    // A peer offers only a certificate from a CA this side named in its request.
    return Error::make_verdict(kTlsAuthErrno, op,
                               std::string("the ") + other +
                                   " failed authentication: it sent no certificate from a CA "
                                   "this side trusts");
  }
  if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED) {
    const auto alert = gnutls_alert_get(s);
    const std::string name =
        gnutls_alert_get_name(alert) ? gnutls_alert_get_name(alert) : "unknown alert";
    if (is_auth_alert(alert)) {
      return Error::make_verdict(
          kTlsAuthErrno, op,
          std::string("the ") + other + " refused this host's certificate (" + name + ")");
    }
    return Error::make_verdict(kTlsProtocolErrno, op,
                               std::string("the ") + other + " ended the handshake: " + name);
  }
  if (rc == GNUTLS_E_UNEXPECTED_PACKET_LENGTH || rc == GNUTLS_E_UNEXPECTED_PACKET ||
      rc == GNUTLS_E_UNSUPPORTED_VERSION_PACKET || rc == GNUTLS_E_DECRYPTION_FAILED ||
      rc == GNUTLS_E_RECORD_OVERFLOW) {
    return Error::make_verdict(
        kTlsProtocolErrno, op,
        std::string("the ") + other + " does not speak TLS (is it running without --tls?)");
  }
  if (rc == GNUTLS_E_PREMATURE_TERMINATION || rc == GNUTLS_E_PULL_ERROR ||
      rc == GNUTLS_E_PUSH_ERROR) {
    return Error::make_verdict(kTlsProtocolErrno, op,
                               std::string("the ") + other +
                                   " closed the connection during the handshake (is it "
                                   "running without --tls, or did it reject us?)");
  }
  if (rc == GNUTLS_E_NO_PRIORITIES_WERE_SET || rc == GNUTLS_E_INSUFFICIENT_CREDENTIALS ||
      rc == GNUTLS_E_NO_CIPHER_SUITES || rc == GNUTLS_E_UNKNOWN_CIPHER_SUITE) {
    return Error::make_verdict(kTlsProtocolErrno, op,
                               std::string("no TLS 1.3 cipher in common with the ") + other + " (" +
                                   gnutls_text(rc) + ")");
  }
  return Error::make_verdict(kTlsProtocolErrno, op, gnutls_text(rc));
}

// Runs `step` (a GnuTLS call) until it stops asking to be called again.
template <typename F>
int drive(gnutls_session_t s, int fd, Clock::time_point deadline, const TlsOptions& opt,
          Result<void>& wait_err, F step) {
  for (;;) {
    const int rc = step();
    if (rc != GNUTLS_E_AGAIN && rc != GNUTLS_E_INTERRUPTED) return rc;
    if (rc == GNUTLS_E_INTERRUPTED) continue;
    wait_err = wait_io(s, fd, deadline, opt);
    if (!wait_err.ok()) return rc;
  }
}

}  // namespace

Result<TlsSession> TlsSession::handshake(int fd, const TlsCredentials& creds,
                                         const TlsOptions& opt) {
  const TlsRole role = creds.role();
  auto impl = std::make_unique<Impl>();
  impl->fd = fd;
  // No session tickets: a ticket is a handshake record after the handshake, which the
  // kernel's receive side would refuse as data.
  const unsigned flags =
      (role == TlsRole::kServer ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NO_TICKETS;
  int rc = gnutls_init(&impl->s, flags);
  if (rc < 0) return Error::make(ENOMEM, "gnutls_init", gnutls_text(rc));
  gnutls_session_t s = impl->s;
  const char* err_pos = nullptr;
  rc = gnutls_priority_set_direct(s, kPriority, &err_pos);
  if (rc < 0) return Error::make(EINVAL, "gnutls_priority_set_direct", gnutls_text(rc));
  rc = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, creds.impl_->cred);
  if (rc < 0) return Error::make(EINVAL, "gnutls_credentials_set", gnutls_text(rc));
  if (role == TlsRole::kServer) {
    gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
    gnutls_session_set_verify_cert(s, nullptr, 0);
  } else {
    if (opt.hostname.empty())
      return Error::make(EINVAL, "TLS handshake", "no name to check the listener against");
    gnutls_session_set_verify_cert(s, opt.hostname.c_str(), 0);
    // SNI takes DNS names only.
    if (opt.hostname.find_first_not_of("0123456789.:") != std::string::npos) {
      gnutls_server_name_set(s, GNUTLS_NAME_DNS, opt.hostname.data(), opt.hostname.size());
    }
  }
  gnutls_transport_set_int(s, fd);

  const NonBlocking nb(fd);
  const auto deadline = Clock::now() + opt.timeout;
  Result<void> wait_err = ok();
  rc = drive(s, fd, deadline, opt, wait_err, [&] { return gnutls_handshake(s); });
  MDEVMIG_TRY(wait_err);
  if (rc < 0) {
    // Tell the peer why (GnuTLS leaves that to us): a rejected source then learns it
    // was refused instead of seeing the connection close.
    if (rc != GNUTLS_E_FATAL_ALERT_RECEIVED && rc != GNUTLS_E_PUSH_ERROR &&
        rc != GNUTLS_E_PULL_ERROR && rc != GNUTLS_E_PREMATURE_TERMINATION) {
      (void)gnutls_alert_send_appropriate(s, rc);
    }
    return handshake_error(s, rc, opt, role);
  }
  if (gnutls_protocol_get_version(s) != GNUTLS_TLS1_3) {
    return Error::make_verdict(kTlsProtocolErrno, "TLS handshake with " + opt.peer,
                               "the peer did not agree on TLS 1.3");
  }

  // The confirmation: the listener has accepted our certificate (see tls.h).
  if (role == TlsRole::kServer) {
    rc = drive(s, fd, deadline, opt, wait_err,
               [&] { return static_cast<int>(gnutls_record_send(s, &kConfirm, 1)); });
    MDEVMIG_TRY(wait_err);
    if (rc < 0) return handshake_error(s, rc, opt, role);
  } else {
    unsigned char got = 0;
    rc = drive(s, fd, deadline, opt, wait_err,
               [&] { return static_cast<int>(gnutls_record_recv(s, &got, 1)); });
    MDEVMIG_TRY(wait_err);
    if (rc == 0) rc = GNUTLS_E_PREMATURE_TERMINATION;
    if (rc < 0) return handshake_error(s, rc, opt, role);
    if (got != kConfirm || gnutls_record_check_pending(s) != 0) {
      return Error::make_verdict(kTlsProtocolErrno, "TLS handshake with " + opt.peer,
                                 "the destination sent something other than its confirmation");
    }
  }

  TlsSession out(std::move(impl));
  out.info_.version = gnutls_protocol_get_name(gnutls_protocol_get_version(s));
  out.info_.cipher = gnutls_cipher_get_name(gnutls_cipher_get(s));
  unsigned n = 0;
  const gnutls_datum_t* chain = gnutls_certificate_get_peers(s, &n);
  gnutls_x509_crt_t crt = nullptr;
  if (n > 0 && gnutls_x509_crt_init(&crt) == 0) {
    gnutls_datum_t dn{};
    if (gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) == 0 &&
        gnutls_x509_crt_get_dn3(crt, &dn, 0) == 0) {
      out.info_.peer_subject.assign(reinterpret_cast<const char*>(dn.data), dn.size);
      gnutls_free(dn.data);
    }
    gnutls_x509_crt_deinit(crt);
  }
  return out;
}

// ---- kernel TLS ----------------------------------------------------------------------

namespace {

// The kernel's crypto_info for one direction, filled from GnuTLS's record state.
union CryptoInfo {
  tls12_crypto_info_aes_gcm_128 gcm128;
  tls12_crypto_info_aes_gcm_256 gcm256;
  tls12_crypto_info_chacha20_poly1305 chacha;
};

template <typename T>
Result<socklen_t> fill(T& info, uint16_t cipher_type, const gnutls_datum_t& key,
                       const gnutls_datum_t& iv, const unsigned char seq[8]) {
  info.info.version = TLS_1_3_VERSION;
  info.info.cipher_type = cipher_type;
  // TLS 1.3's 12-byte IV: the kernel's salt is its head, its iv the rest.
  constexpr std::size_t salt = sizeof(info.salt);
  if (key.size != sizeof(info.key) || iv.size != salt + sizeof(info.iv)) {
    return Error::make(EINVAL, "kernel TLS", "unexpected key or IV size from the TLS library");
  }
  std::memcpy(info.key, key.data, sizeof(info.key));
  if constexpr (salt > 0) std::memcpy(info.salt, iv.data, salt);
  std::memcpy(info.iv, iv.data + salt, sizeof(info.iv));
  std::memcpy(info.rec_seq, seq, sizeof(info.rec_seq));
  return static_cast<socklen_t>(sizeof(T));
}

}  // namespace

Result<void> TlsSession::to_kernel() {
  gnutls_session_t s = impl_->s;
  const int fd = impl_->fd;
  // A system configuration can make GnuTLS switch to the kernel on its own (gnutls
  // `ktls = true`): then it is done already.
  const auto by_gnutls = gnutls_transport_is_ktls_enabled(s);
  if (by_gnutls == GNUTLS_KTLS_DUPLEX) return ok();
  if (by_gnutls != 0) {
    return Error::make(EOPNOTSUPP, "kernel TLS",
                       "GnuTLS moved only one direction to the kernel "
                       "(its system configuration's ktls setting)");
  }
  const auto cipher = gnutls_cipher_get(s);
  for (const int dir : {TLS_TX, TLS_RX}) {
    gnutls_datum_t mac{}, iv{}, key{};
    unsigned char seq[8];
    const int rc = gnutls_record_get_state(s, dir == TLS_RX ? 1 : 0, &mac, &iv, &key, seq);
    if (rc < 0) return Error::make(EINVAL, "gnutls_record_get_state", gnutls_text(rc));
    CryptoInfo ci;
    std::memset(&ci, 0, sizeof(ci));
    Result<socklen_t> len = Error::make(EOPNOTSUPP, "kernel TLS",
                                        std::string("cipher ") + gnutls_cipher_get_name(cipher));
    switch (cipher) {
      case GNUTLS_CIPHER_AES_128_GCM:
        len = fill(ci.gcm128, TLS_CIPHER_AES_GCM_128, key, iv, seq);
        break;
      case GNUTLS_CIPHER_AES_256_GCM:
        len = fill(ci.gcm256, TLS_CIPHER_AES_GCM_256, key, iv, seq);
        break;
      case GNUTLS_CIPHER_CHACHA20_POLY1305:
        len = fill(ci.chacha, TLS_CIPHER_CHACHA20_POLY1305, key, iv, seq);
        break;
      default:
        break;
    }
    if (!len.ok()) {
      ::explicit_bzero(&ci, sizeof(ci));
      return len.error();
    }
    if (dir == TLS_TX && ::setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) != 0) {
      const int e = errno;
      ::explicit_bzero(&ci, sizeof(ci));
      return Error::make(
          e, "kernel TLS (setsockopt TCP_ULP \"tls\")",
          "this kernel cannot do TLS on sockets: load its tls module (modprobe tls)");
    }
    const int rc2 = ::setsockopt(fd, SOL_TLS, dir, &ci, *len);
    const int e = errno;
    ::explicit_bzero(&ci, sizeof(ci));
    if (rc2 != 0) {
      // ENOENT: the kernel could not find (or load) the cipher's crypto module.
      const char* module = cipher == GNUTLS_CIPHER_CHACHA20_POLY1305 ? "chacha20poly1305" : "gcm";
      return Error::make(
          e, dir == TLS_TX ? "kernel TLS (setsockopt TLS_TX)" : "kernel TLS (setsockopt TLS_RX)",
          std::string("cipher ") + gnutls_cipher_get_name(cipher) + " with TLS 1.3" +
              (e == ENOENT ? std::string(": the kernel lacks it (modprobe ") + module + ")" : ""));
    }
  }
  return ok();
}

Result<TlsInfo> secure_socket(int fd, const TlsCredentials& creds, const TlsOptions& opt) {
  TlsSession session = MDEVMIG_TRY(TlsSession::handshake(fd, creds, opt));
  MDEVMIG_TRY(session.to_kernel());
  return session.info();
}

}  // namespace mdevmig::io
