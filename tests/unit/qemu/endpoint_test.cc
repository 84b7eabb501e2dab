// Endpoints: QEMU's spelling parsed and written back, bad ones refused, and a TCP
// connection that retries while nothing listens yet (a QEMU on another host that is
// still starting).
#include "tools/qtest/endpoint.h"

#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include <gtest/gtest.h>

#include "migration/io/net.h"
#include "tools/qtest/line_channel.h"

namespace mdevmig::qemu {
namespace {

TEST(Endpoint, ParsesAndWritesQemuSpelling) {
  auto t = Endpoint::parse("tcp:192.0.2.2:4400");
  ASSERT_TRUE(t.ok()) << t.error().message();
  EXPECT_TRUE(t->is_tcp());
  EXPECT_EQ(t->host, "192.0.2.2");
  EXPECT_EQ(t->port, 4400);
  EXPECT_EQ(t->uri(), "tcp:192.0.2.2:4400");
  EXPECT_EQ(t->next(1, ".x").uri(), "tcp:192.0.2.2:4401");
  auto u = Endpoint::parse("unix:/tmp/a.qmp");
  ASSERT_TRUE(u.ok());
  EXPECT_FALSE(u->is_tcp());
  EXPECT_EQ(u->uri(), "unix:/tmp/a.qmp");
  EXPECT_EQ(u->next(1, ".qtest").uri(), "unix:/tmp/a.qmp.qtest");
}

TEST(Endpoint, RefusesWhatIsNotAnEndpoint) {
  for (const char* bad : {"", "unix:", "tcp:", "tcp:4400", "tcp:host", "tcp:host:0",
                          "tcp:host:70000", "file:/x", "192.0.2.2:4400"}) {
    auto e = Endpoint::parse(bad);
    EXPECT_FALSE(e.ok()) << bad;
    if (!e.ok()) {
      EXPECT_EQ(e.error().errnum, EINVAL) << bad;
    }
  }
}

TEST(Endpoint, TcpConnectRetriesUntilTheListenerAppears) {
  // A free port: bind to 0, note it, let it go.
  uint16_t port = 0;
  {
    auto l = listen_on(Endpoint::tcp("127.0.0.1", 0));
    ASSERT_TRUE(l.ok()) << l.error().message();
    port = io::local_port(l->get()).value();
  }
  const Endpoint at = Endpoint::tcp("127.0.0.1", port);
  auto refused = connect_once(at);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(connect_retryable(refused.error())) << refused.error().message();
  std::thread server([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto l = listen_on(at);
    ASSERT_TRUE(l.ok()) << l.error().message();
    int c = ::accept(l->get(), nullptr, nullptr);
    ASSERT_GE(c, 0);
    ASSERT_EQ(::send(c, "hello\n", 6, MSG_NOSIGNAL), 6);
    ::close(c);
  });
  auto ch = LineChannel::connect(at, deadline_in(std::chrono::seconds(20)));
  ASSERT_TRUE(ch.ok()) << ch.error().message();
  auto line = ch->read_line(deadline_in(std::chrono::seconds(20)));
  server.join();
  ASSERT_TRUE(line.ok()) << line.error().message();
  EXPECT_EQ(*line, "hello");
  EXPECT_EQ(ch->name(), "tcp:127.0.0.1:" + std::to_string(port));
}

TEST(Endpoint, UnixConnectGivesUpAtTheDeadline) {
  auto ch = LineChannel::connect(Endpoint::unix_socket("/nonexistent/dir/x.qmp"),
                                 deadline_in(std::chrono::milliseconds(100)));
  ASSERT_FALSE(ch.ok());
  EXPECT_EQ(ch.error().errnum, ENOENT);
}

}  // namespace
}  // namespace mdevmig::qemu
