// The QMP client against a scripted peer: the handshake, id matching, events queued
// between replies, partial lines, malformed input, timeouts and a closed socket.
#include "tools/qemu/qmp.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/unit/qemu/fake_peer.h"

namespace mdevmig::qemu {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using testing::FakePeer;

constexpr const char* kGreeting =
    R"({"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian"}, "capabilities": ["oob"]}})"
    "\n";

// The id of a command line the client sent, after checking its name.
uint64_t expect_command(FakePeer& peer, const std::string& name, json* args = nullptr) {
  auto line = peer.read_line();
  if (!line) {
    ADD_FAILURE() << "no command";
    return 0;
  }
  json msg = json::parse(*line, nullptr, false);
  EXPECT_FALSE(msg.is_discarded()) << *line;
  EXPECT_EQ(msg.value("execute", ""), name) << *line;
  if (args != nullptr) *args = msg.value("arguments", json());
  return msg.value("id", uint64_t{0});
}

std::string reply(uint64_t id, const json& ret = json::object()) {
  return json{{"return", ret}, {"id", id}}.dump() + "\n";
}

std::string event(const std::string& name, const json& data = nullptr) {
  json e = {{"event", name}, {"timestamp", {{"seconds", 1700000000}, {"microseconds", 250000}}}};
  if (!data.is_null()) e["data"] = data;
  return e.dump() + "\n";
}

// Greets and answers qmp_capabilities.
void handshake(FakePeer& peer) {
  peer.send(kGreeting);
  peer.send(reply(expect_command(peer, "qmp_capabilities")));
}

struct Session {
  std::unique_ptr<FakePeer> peer;
  std::optional<QmpClient> client;
};

// A connected client whose peer runs `script` after the handshake.
Session connected(std::function<void(FakePeer&)> script) {
  auto [ch, fd] = testing::make_pair();
  Session s;
  s.peer = std::make_unique<FakePeer>(std::move(fd));
  s.peer->run([script = std::move(script)](FakePeer& p) {
    handshake(p);
    script(p);
  });
  auto c = QmpClient::handshake(std::move(ch), 2s);
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message());
  if (c.ok()) s.client.emplace(std::move(c.value()));
  return s;
}

TEST(Qmp, HandshakeReadsVersion) {
  auto s = connected([](FakePeer&) {});
  ASSERT_TRUE(s.client);
  EXPECT_EQ(s.client->version(), "7.2.22");
  EXPECT_EQ(s.client->version_major(), 7);
}

TEST(Qmp, ExecuteSendsArgumentsAndReturnsTheReply) {
  auto s = connected([](FakePeer& p) {
    json args;
    uint64_t id = expect_command(p, "migrate-set-parameters", &args);
    EXPECT_EQ(args, (json{{"max-bandwidth", 1048576}}));
    p.send(reply(id, json{{"status", "ok"}}));
  });
  ASSERT_TRUE(s.client);
  auto r = s.client->execute("migrate-set-parameters", {{"max-bandwidth", 1048576}});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ((*r)["status"], "ok");
}

TEST(Qmp, EventsInterleavedWithRepliesAreQueuedInOrder) {
  auto s = connected([](FakePeer& p) {
    uint64_t id = expect_command(p, "query-status");
    p.send(event("STOP") + event("MIGRATION", {{"status", "active"}}));
    p.send(reply(id, json{{"status", "paused"}}) + event("RESUME"));
  });
  ASSERT_TRUE(s.client);
  auto r = s.client->execute("query-status");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ((*r)["status"], "paused");
  auto resume = s.client->wait_event("RESUME", 2s);  // arrives after the reply
  ASSERT_TRUE(resume.ok()) << resume.error().message();
  auto events = s.client->take_events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].name, "STOP");
  EXPECT_DOUBLE_EQ(events[0].timestamp, 1700000000.25);
  EXPECT_EQ(events[1].name, "MIGRATION");
  EXPECT_EQ(events[1].data["status"], "active");
}

TEST(Qmp, RepliesToOtherIdsAreDiscarded) {
  auto s = connected([](FakePeer& p) {
    uint64_t id = expect_command(p, "query-migrate");
    p.send(reply(id + 100, json{{"status", "stale"}}));
    p.send(R"({"return": {"status": "no id"}})"
           "\n");
    p.send(reply(id, json{{"status", "active"}}));
  });
  ASSERT_TRUE(s.client);
  auto r = s.client->execute("query-migrate");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ((*r)["status"], "active");
}

TEST(Qmp, ALateReplyToATimedOutCommandIsNotTakenForTheNext) {
  auto s = connected([](FakePeer& p) {
    uint64_t first = expect_command(p, "slow");
    uint64_t second = expect_command(p, "fast");
    p.send(reply(first, json{{"who", "slow"}}));
    p.send(reply(second, json{{"who", "fast"}}));
  });
  ASSERT_TRUE(s.client);
  auto slow = s.client->execute("slow", nullptr, 100ms);
  ASSERT_FALSE(slow.ok());
  EXPECT_EQ(slow.error().errnum, ETIMEDOUT);
  auto fast = s.client->execute("fast");
  ASSERT_TRUE(fast.ok()) << fast.error().message();
  EXPECT_EQ((*fast)["who"], "fast");
}

TEST(Qmp, PartialLinesAreReassembled) {
  auto s = connected([](FakePeer& p) {
    uint64_t id = expect_command(p, "query-status");
    p.send_slowly(event("STOP") + reply(id, json{{"status", "running"}}), 7, 2ms);
  });
  ASSERT_TRUE(s.client);
  auto r = s.client->execute("query-status");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ((*r)["status"], "running");
  EXPECT_TRUE(s.client->peek_event("STOP").has_value());
}

TEST(Qmp, ErrorReplyCarriesClassAndDescription) {
  auto s = connected([](FakePeer& p) {
    uint64_t id = expect_command(p, "migrate");
    p.send(json{{"error",
                 {{"class", "GenericError"}, {"desc", "VFIO device doesn't support migration"}}},
                {"id", id}}
               .dump() +
           "\n");
  });
  ASSERT_TRUE(s.client);
  auto r = s.client->execute("migrate", {{"uri", "unix:/x"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().errnum, EREMOTEIO);
  EXPECT_NE(r.error().context.find("GenericError: VFIO device doesn't support migration"),
            std::string::npos)
      << r.error().message();
}

TEST(Qmp, MalformedJsonIsAProtocolError) {
  for (const char* bad : {"{\"return\": {}, \"id\": 2\n", "[1,2,3]\n", "\"text\"\n",
                          "{\"neither\": 1}\n", "{\"event\": 42}\n", "\xff\xfe\n"}) {
    auto s = connected([bad](FakePeer& p) {
      expect_command(p, "query-status");
      p.send(bad);
    });
    ASSERT_TRUE(s.client);
    auto r = s.client->execute("query-status", nullptr, 2s);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().errnum, EPROTO) << bad << ": " << r.error().message();
  }
}

TEST(Qmp, BadGreetingsAreRejected) {
  for (const char* bad : {"{\"return\": {}}\n", "not json\n", "{\"QMP\": 1}\n"}) {
    auto [ch, fd] = testing::make_pair();
    FakePeer peer(std::move(fd));
    peer.run([bad](FakePeer& p) { p.send(bad); });
    auto c = QmpClient::handshake(std::move(ch), 2s);
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_EQ(c.error().errnum, EPROTO) << bad;
  }
}

TEST(Qmp, SilentPeerTimesOut) {
  auto [ch, fd] = testing::make_pair();
  FakePeer peer(std::move(fd));
  auto t0 = std::chrono::steady_clock::now();
  auto c = QmpClient::handshake(std::move(ch), 150ms);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().errnum, ETIMEDOUT);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
}

TEST(Qmp, ClosedPeerIsConnectionReset) {
  auto s = connected([](FakePeer& p) {
    expect_command(p, "quit");
    p.close();
  });
  ASSERT_TRUE(s.client);
  auto r = s.client->execute("quit", nullptr, 2s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().errnum, ECONNRESET);
}

TEST(Qmp, WaitEventTimesOutAndFindsQueuedOnes) {
  auto s = connected([](FakePeer& p) {
    uint64_t id = expect_command(p, "cont");
    p.send(event("RESUME") + reply(id));
    std::this_thread::sleep_for(300ms);
    p.send(event("SHUTDOWN", {{"guest", false}}));
  });
  ASSERT_TRUE(s.client);
  ASSERT_TRUE(s.client->execute("cont").ok());
  auto none = s.client->wait_event("MIGRATION", 50ms);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().errnum, ETIMEDOUT);
  EXPECT_TRUE(s.client->wait_event("RESUME", 10ms).ok());  // was queued by execute()
  auto shut = s.client->wait_event("SHUTDOWN", 3s);
  ASSERT_TRUE(shut.ok()) << shut.error().message();
  EXPECT_EQ(shut->data["guest"], false);
}

TEST(Qmp, PollQueuesEventsWithoutWaiting) {
  auto s = connected([](FakePeer& p) { p.send(event("A") + event("B")); });
  ASSERT_TRUE(s.client);
  s.peer->join();
  ASSERT_TRUE(s.client->poll().ok());
  EXPECT_EQ(s.client->take_events().size(), 2u);
  ASSERT_TRUE(s.client->poll().ok());  // nothing more: returns at once
  EXPECT_TRUE(s.client->take_events().empty());
}

TEST(Qmp, EventQueueIsBounded) {
  static constexpr std::size_t n = QmpClient::kMaxQueuedEvents + 100;
  auto s = connected([](FakePeer& p) {
    std::string burst;
    for (std::size_t i = 0; i < n; ++i) burst += event("E", {{"i", i}});
    uint64_t id = expect_command(p, "query-status");
    p.send(burst + reply(id));
  });
  ASSERT_TRUE(s.client);
  ASSERT_TRUE(s.client->execute("query-status").ok());
  auto events = s.client->take_events();
  ASSERT_EQ(events.size(), QmpClient::kMaxQueuedEvents);
  EXPECT_EQ(s.client->dropped_events(), 100u);
  EXPECT_EQ(events.front().data["i"], 100);  // the oldest were dropped
}

TEST(Qmp, OverlongLineIsRefused) {
  auto [ch0, fd] = testing::make_pair(/*max_line=*/4096);
  FakePeer peer(std::move(fd));
  peer.run([](FakePeer& p) {
    p.send(kGreeting);
    expect_command(p, "qmp_capabilities");
    p.send(std::string(10000, ' '));
  });
  auto c = QmpClient::handshake(std::move(ch0), 2s);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().errnum, EMSGSIZE);
}

}  // namespace
}  // namespace mdevmig::qemu
