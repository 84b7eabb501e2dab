// The qtest client against a small fake of QEMU's qtest server (a byte-addressed memory
// and a port space): command syntax, reply parsing, bulk transfers, IRQ notifications
// interleaved with replies, malformed replies and timeouts.
#include "tools/qtest/qtest.h"

#include <map>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/unit/qemu/fake_peer.h"
#include "tests/unit/qemu/fake_qtest.h"
#include "tools/qtest/codec.h"

namespace mdevmig::qemu {
namespace {

using namespace std::chrono_literals;
using testing::FakePeer;
using testing::FakeQtest;

struct Rig {
  FakeQtest fake;
  std::unique_ptr<FakePeer> peer;
  std::optional<QtestClient> client;

  Rig() {
    auto [ch, fd] = testing::make_pair(1u << 26);
    peer = std::make_unique<FakePeer>(std::move(fd));
    peer->run([this](FakePeer& p) { fake.serve(p); });
    client.emplace(std::move(ch));
    client->set_timeout(2s);
  }
  ~Rig() {
    client.reset();  // EOF ends the fake
    peer->join();
  }
};

TEST(Qtest, ScalarAccessSyntaxAndValues) {
  Rig r;
  ASSERT_TRUE(r.client->writel(0xe0000040, 0x12345678).ok());
  ASSERT_TRUE(r.client->writeq(0x100001000, 0x1122334455667788).ok());
  ASSERT_TRUE(r.client->outl(0xcf8, 0x80001800).ok());
  ASSERT_TRUE(r.client->writeb(0x10, 0xab).ok());
  ASSERT_TRUE(r.client->writew(0x12, 0xcdef).ok());
  EXPECT_EQ(r.client->readl(0xe0000040).value_or(0), 0x12345678u);
  EXPECT_EQ(r.client->readq(0x100001000).value_or(0), 0x1122334455667788u);
  EXPECT_EQ(r.client->inl(0xcf8).value_or(0), 0x80001800u);
  EXPECT_EQ(r.client->readb(0x10).value_or(0), 0xabu);
  EXPECT_EQ(r.client->readw(0x12).value_or(0), 0xcdefu);
  EXPECT_EQ(r.client->inb(0xcf8).value_or(0), 0x00u);
  EXPECT_EQ(r.client->inw(0xcfa).value_or(0), 0x8000u);
  r.client.reset();
  r.peer->join();
  ASSERT_GE(r.fake.log.size(), 3u);
  EXPECT_EQ(r.fake.log[0], "writel 0xe0000040 0x12345678");
  EXPECT_EQ(r.fake.log[1], "writeq 0x100001000 0x1122334455667788");
  EXPECT_EQ(r.fake.log[2], "outl 0xcf8 0x80001800");
}

TEST(Qtest, BulkTransfersRoundTrip) {
  Rig r;
  std::vector<uint8_t> data(70000);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 31 + (i >> 8));
  ASSERT_TRUE(r.client->b64write(0x200000, data).ok());
  auto back = r.client->b64read(0x200000, data.size());
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(*back, data);
  std::vector<uint8_t> small = {1, 2, 3, 0xfe, 0xff};
  ASSERT_TRUE(r.client->write(0x300000, small).ok());
  EXPECT_EQ(r.client->read(0x300000, small.size()).value_or(std::vector<uint8_t>{}), small);
  ASSERT_TRUE(r.client->memset(0x300001, 3, 0x5a).ok());
  EXPECT_EQ(r.client->read(0x300000, 5).value_or(std::vector<uint8_t>{}),
            (std::vector<uint8_t>{1, 0x5a, 0x5a, 0x5a, 0xff}));
  EXPECT_TRUE(r.client->read(0x300000, 0).ok());
}

TEST(Qtest, FailRepliesAreRemoteErrors) {
  Rig r;
  auto e = r.client->irq_intercept_in("nonexistent");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().errnum, EREMOTEIO);
  EXPECT_NE(e.error().context.find("Unknown device"), std::string::npos);
  EXPECT_EQ(r.client->irq_intercept_in("bad path").error().errnum, EINVAL);  // never sent
  auto u = r.client->command("clock_step 100");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().errnum, EREMOTEIO);
}

TEST(Qtest, IrqNotificationsBeforeRepliesAreApplied) {
  Rig r;
  r.fake.hook = [](FakePeer& p, const std::string& line) {
    if (line.rfind("readl", 0) != 0) return false;
    p.send("IRQ raise 23\nIRQ lower 23\nIRQ raise 23\n");
    p.send("OK 0x0000000000000001\n");
    p.send("IRQ raise 0\n");
    return true;
  };
  ASSERT_TRUE(r.client->irq_intercept_in("ioapic").ok());
  EXPECT_EQ(r.client->readl(0xe0000028).value_or(0), 1u);
  IrqLine l = r.client->irq(23);
  EXPECT_TRUE(l.level);
  EXPECT_EQ(l.raises, 2u);
  EXPECT_EQ(l.lowers, 1u);
  ASSERT_TRUE(r.client->wait_irq_raises(0, 1, 2s).ok());  // arrives after the reply
  EXPECT_EQ(r.client->irq(5).raises, 0u);
  auto none = r.client->wait_irq_raises(5, 1, 50ms);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().errnum, ETIMEDOUT);
}

TEST(Qtest, PollIrqsReadsWithoutWaiting) {
  Rig r;
  r.fake.hook = [](FakePeer& p, const std::string& line) {
    if (line != "writel 0x1 0x1") return false;
    p.send("OK\nIRQ raise 19\n");
    return true;
  };
  ASSERT_TRUE(r.client->writel(1, 1).ok());
  for (int i = 0; i < 100 && r.client->irq(19).raises == 0; ++i) {
    ASSERT_TRUE(r.client->poll_irqs().ok());
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(r.client->irq(19).raises, 1u);
}

TEST(Qtest, MalformedRepliesAreProtocolErrors) {
  const char* kBad[] = {"OK zz\n", "OK 0x1ffffffff\n", "WHAT\n", "IRQ sideways 3\n",
                        "IRQ raise x\n"};
  for (const char* bad : kBad) {
    Rig r;
    r.fake.hook = [bad](FakePeer& p, const std::string&) {
      p.send(bad);
      return true;
    };
    auto v = r.client->readl(0x1000);
    ASSERT_FALSE(v.ok()) << bad;
    EXPECT_EQ(v.error().errnum, EPROTO) << bad << ": " << v.error().message();
  }
  Rig r;
  r.fake.hook = [](FakePeer& p, const std::string&) {
    p.send("OK AAAA\n");  // 3 bytes where 16 were asked for
    return true;
  };
  EXPECT_EQ(r.client->b64read(0, 16).error().errnum, EPROTO);
}

TEST(Qtest, UnansweredCommandTimesOutAndStrayReplyIsCaught) {
  Rig r;
  r.fake.hook = [](FakePeer&, const std::string& line) { return line.rfind("readq", 0) == 0; };
  r.client->set_timeout(100ms);
  auto v = r.client->readq(0);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().errnum, ETIMEDOUT);
  r.fake.hook = [](FakePeer& p, const std::string&) {
    p.send("OK\n");
    return true;
  };
  ASSERT_TRUE(r.client->writel(0, 0).ok());
  // A reply no command asked for is a broken session, not an IRQ.
  r.fake.hook = [](FakePeer& p, const std::string&) {
    p.send("OK\nOK\n");
    return true;
  };
  ASSERT_TRUE(r.client->writel(0, 0).ok());
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(r.client->poll_irqs().error().errnum, EPROTO);
}

TEST(Qtest, PeerCloseIsConnectionReset) {
  auto [ch, fd] = testing::make_pair();
  QtestClient c(std::move(ch));
  fd.reset();
  auto v = c.readl(0);
  ASSERT_FALSE(v.ok());
  EXPECT_TRUE(v.error().errnum == ECONNRESET || v.error().errnum == EPIPE) << v.error().message();
}

}  // namespace
}  // namespace mdevmig::qemu
