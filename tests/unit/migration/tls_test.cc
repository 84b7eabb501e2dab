// migration/io/tls: credentials, the mutual-authentication handshake over loopback TCP
// and its failures, with test certificates made at test time (make_tls_certs.sh). The
// handover to kernel TLS needs the kernel's tls module: where this kernel has none, the
// handover must fail with an error that says so; cli_lab moves data across it.
#include "migration/io/tls.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "migration/io/net.h"

#ifndef MDEVMIG_MAKE_TLS_CERTS
#error "MDEVMIG_MAKE_TLS_CERTS must be defined"
#endif

namespace mdevmig::io {
namespace {

using namespace std::chrono_literals;

class Tls : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/mdevmig-tls-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    const std::string cmd = std::string(MDEVMIG_MAKE_TLS_CERTS) + " " + root_ + " >/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << "making test certificates failed (needs openssl)";
  }
  static void TearDownTestSuite() {
    if (!root_.empty()) (void)std::system(("rm -rf " + root_).c_str());
  }
  static std::string dir(const char* which) { return root_ + "/" + which; }
  static inline std::string root_;
};

// Both ends of a loopback TCP connection.
struct Conn {
  UniqueFd server, client;
};
Conn connect_pair() {
  auto l = listen_tcp({"127.0.0.1", 0});
  EXPECT_TRUE(l.ok());
  const uint16_t port = *local_port(l->get());
  auto c = connect_tcp({"127.0.0.1", port});
  EXPECT_TRUE(c.ok());
  auto s = accept_one(l->get(), 10s);
  EXPECT_TRUE(s.ok());
  return {std::move(*s), std::move(*c)};
}

struct Outcome {
  std::optional<Result<TlsSession>> server, client;
};

// Handshakes with server credentials from `sdir`, client from `cdir`.
Outcome handshake(const std::string& sdir, const std::string& cdir,
                  const std::string& hostname = "127.0.0.1") {
  auto sc = TlsCredentials::load(sdir, TlsRole::kServer);
  auto cc = TlsCredentials::load(cdir, TlsRole::kClient);
  EXPECT_TRUE(sc.ok()) << sc.error().message();
  EXPECT_TRUE(cc.ok()) << cc.error().message();
  Conn c = connect_pair();
  Outcome out;
  std::thread t([&] {
    TlsOptions o;
    o.peer = "source";
    o.timeout = 10s;
    out.server.emplace(TlsSession::handshake(c.server.get(), *sc, o));
    // A rejected side closes at once, as the CLI does.
    if (!out.server->ok()) c.server.reset();
  });
  TlsOptions o;
  o.peer = "destination";
  o.hostname = hostname;
  o.timeout = 10s;
  out.client.emplace(TlsSession::handshake(c.client.get(), *cc, o));
  if (!out.client->ok()) c.client.reset();
  t.join();
  return out;
}

bool kernel_has_tls() {
  std::ifstream f("/proc/sys/net/ipv4/tcp_available_ulp");
  std::string ulps;
  std::getline(f, ulps);
  return (" " + ulps + " ").find(" tls ") != std::string::npos;
}

TEST_F(Tls, CredentialsNameTheMissingFile) {
  auto r = TlsCredentials::load(root_ + "/nowhere", TlsRole::kServer);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("nowhere/ca-cert.pem: missing"), std::string::npos)
      << r.error().message();
  // The server files of a client-only directory.
  const std::string half = root_ + "/client-only";
  ASSERT_EQ(std::system(("mkdir -p " + half + " && cp " + dir("good") + "/ca-cert.pem " +
                         dir("good") + "/client-* " + half)
                            .c_str()),
            0);
  EXPECT_TRUE(TlsCredentials::load(half, TlsRole::kClient).ok());
  r = TlsCredentials::load(half, TlsRole::kServer);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("server-cert.pem: missing"), std::string::npos)
      << r.error().message();
}

TEST_F(Tls, CredentialsRejectAKeyThatIsNotTheCertificates) {
  const std::string mixed = root_ + "/mixed";
  ASSERT_EQ(std::system(("mkdir -p " + mixed + " && cp " + dir("good") + "/* " + mixed + " && cp " +
                         dir("other-ca") + "/server-key.pem " + mixed)
                            .c_str()),
            0);
  auto r = TlsCredentials::load(mixed, TlsRole::kServer);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("server-cert.pem: cannot be used with"), std::string::npos)
      << r.error().message();
  // Garbage where the CA should be.
  ASSERT_EQ(std::system(("echo not a certificate > " + mixed + "/ca-cert.pem").c_str()), 0);
  r = TlsCredentials::load(mixed, TlsRole::kClient);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("ca-cert.pem"), std::string::npos) << r.error().message();
}

TEST_F(Tls, MutualHandshakeAgreesOnTls13AndNamesThePeers) {
  Outcome o = handshake(dir("good"), dir("good"));
  ASSERT_TRUE(o.server->ok()) << o.server->error().message();
  ASSERT_TRUE(o.client->ok()) << o.client->error().message();
  EXPECT_EQ((*o.client)->info().version, "TLS1.3");
  EXPECT_EQ((*o.client)->info().cipher, (*o.server)->info().cipher);
  EXPECT_NE((*o.client)->info().peer_subject.find("CN=mdevmig-destination"), std::string::npos);
  EXPECT_NE((*o.server)->info().peer_subject.find("CN=mdevmig-source"), std::string::npos);
  // The name checked may be a DNS name of the certificate too.
  Outcome named = handshake(dir("good"), dir("good"), "localhost");
  EXPECT_TRUE(named.client->ok()) << named.client->error().message();
}

TEST_F(Tls, ASourceFromAnotherCaIsRejectedAndLearnsIt) {
  Outcome o = handshake(dir("good"), dir("rogue-client"));
  ASSERT_FALSE(o.server->ok());
  ASSERT_FALSE(o.client->ok()) << "the source must not go on after the listener rejected it";
  EXPECT_EQ(o.server->error().errnum, kTlsAuthErrno);
  EXPECT_EQ(o.client->error().errnum, kTlsAuthErrno) << o.client->error().message();
  EXPECT_NE(o.server->error().message().find("the source failed authentication"), std::string::npos)
      << o.server->error().message();
  EXPECT_NE(o.client->error().message().find("refused this host's certificate"), std::string::npos)
      << o.client->error().message();
}

TEST_F(Tls, AListenerFromAnotherCaIsRejected) {
  Outcome o = handshake(dir("other-ca"), dir("good"));
  ASSERT_FALSE(o.client->ok());
  EXPECT_EQ(o.client->error().errnum, kTlsAuthErrno);
  EXPECT_NE(o.client->error().message().find("the destination failed authentication"),
            std::string::npos)
      << o.client->error().message();
  ASSERT_FALSE(o.server->ok());
}

TEST_F(Tls, ExpiredCertificatesAreRejectedSayingSo) {
  Outcome o = handshake(dir("expired"), dir("good"));
  ASSERT_FALSE(o.client->ok());
  EXPECT_EQ(o.client->error().errnum, kTlsAuthErrno);
  EXPECT_NE(o.client->error().message().find("expired"), std::string::npos)
      << o.client->error().message();
  Outcome o2 = handshake(dir("good"), dir("expired"));
  ASSERT_FALSE(o2.server->ok());
  EXPECT_NE(o2.server->error().message().find("expired"), std::string::npos)
      << o2.server->error().message();
  ASSERT_FALSE(o2.client->ok());
}

TEST_F(Tls, TheListenersNameIsChecked) {
  Outcome o = handshake(dir("wrong-name"), dir("wrong-name"));
  ASSERT_FALSE(o.client->ok());
  EXPECT_EQ(o.client->error().errnum, kTlsAuthErrno);
  EXPECT_NE(o.client->error().message().find("the destination failed authentication"),
            std::string::npos)
      << o.client->error().message();
  Outcome named = handshake(dir("wrong-name"), dir("wrong-name"), "elsewhere.example");
  EXPECT_TRUE(named.client->ok()) << named.client->error().message();
  EXPECT_TRUE(named.server->ok()) << named.server->error().message();
}

TEST_F(Tls, APlaintextPeerIsToldApartFromARejectedOne) {
  auto sc = TlsCredentials::load(dir("good"), TlsRole::kServer);
  auto cc = TlsCredentials::load(dir("good"), TlsRole::kClient);
  ASSERT_TRUE(sc.ok() && cc.ok());
  {  // A plaintext source (the start of a wire hello) at a TLS listener.
    Conn c = connect_pair();
    const char hello[64] = {0, 0, 0, 0, 6, 0, 0, 0};
    ASSERT_EQ(::send(c.client.get(), hello, sizeof(hello), MSG_NOSIGNAL), 64);
    TlsOptions o;
    o.peer = "source";
    o.timeout = 10s;
    auto r = TlsSession::handshake(c.server.get(), *sc, o);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().errnum, kTlsProtocolErrno);
    EXPECT_NE(r.error().message().find("does not speak TLS"), std::string::npos)
        << r.error().message();
  }
  {  // A TLS source at a plaintext listener, which reads a little and hangs up.
    Conn c = connect_pair();
    std::thread plain([&] {
      char buf[256];
      (void)::recv(c.server.get(), buf, sizeof(buf), 0);
      c.server.reset();
    });
    TlsOptions o;
    o.peer = "destination";
    o.hostname = "127.0.0.1";
    o.timeout = 10s;
    auto r = TlsSession::handshake(c.client.get(), *cc, o);
    plain.join();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().errnum, kTlsProtocolErrno) << r.error().message();
    EXPECT_NE(r.error().message().find("without --tls"), std::string::npos) << r.error().message();
  }
}

TEST_F(Tls, ASilentPeerTimesOut) {
  auto sc = TlsCredentials::load(dir("good"), TlsRole::kServer);
  ASSERT_TRUE(sc.ok());
  Conn c = connect_pair();
  TlsOptions o;
  o.peer = "source";
  o.timeout = 300ms;
  auto r = TlsSession::handshake(c.server.get(), *sc, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().errnum, ETIMEDOUT);
}

TEST_F(Tls, KernelTlsTakesOverOrSaysWhyNot) {
  auto sc = TlsCredentials::load(dir("good"), TlsRole::kServer);
  auto cc = TlsCredentials::load(dir("good"), TlsRole::kClient);
  ASSERT_TRUE(sc.ok() && cc.ok());
  Conn c = connect_pair();
  std::optional<Result<TlsInfo>> server;
  std::thread t([&] {
    TlsOptions o;
    o.peer = "source";
    server.emplace(secure_socket(c.server.get(), *sc, o));
  });
  TlsOptions o;
  o.peer = "destination";
  o.hostname = "127.0.0.1";
  auto client = secure_socket(c.client.get(), *cc, o);
  t.join();
  if (!kernel_has_tls()) {
    // This kernel has no TLS (no tls module loaded, and this process may not load it):
    // no plaintext fallback, an error that says what to do.
    ASSERT_FALSE(client.ok());
    EXPECT_NE(client.error().message().find("modprobe tls"), std::string::npos)
        << client.error().message();
    ASSERT_FALSE(server->ok());
    GTEST_SKIP() << "no kernel TLS here: cli_lab moves data across it";
  }
  ASSERT_TRUE(client.ok()) << client.error().message();
  ASSERT_TRUE(server->ok()) << server->error().message();
  const std::string msg = "through the kernel's TLS";
  ASSERT_EQ(::send(c.client.get(), msg.data(), msg.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(msg.size()));
  std::string got(msg.size(), '\0');
  ASSERT_EQ(::recv(c.server.get(), got.data(), got.size(), MSG_WAITALL),
            static_cast<ssize_t>(msg.size()));
  EXPECT_EQ(got, msg);
}

}  // namespace
}  // namespace mdevmig::io
