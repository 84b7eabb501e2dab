// Vm against a scripted QMP peer on a unix socket (Vm::attach): the loops that follow
// QEMU through a migration wait as long as their own deadline for an answer. While QEMU
// holds its big lock (a stop-and-copy, a load) its monitor is silent, on a busy machine
// for longer than one command's default timeout.
#include "tools/qemu/vm.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/unit/qemu/fake_peer.h"

namespace mdevmig::qemu {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using testing::FakePeer;

// A listening unix socket in a fresh directory; accepts one client.
class Listener {
 public:
  Listener() {
    char tmpl[] = "/tmp/mdevmig-vm-test.XXXXXX";
    dir_ = ::mkdtemp(tmpl) ? tmpl : "";
    path_ = dir_ + "/qmp";
    fd_ = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path_.size() >= sizeof a.sun_path) std::abort();
    std::memcpy(a.sun_path, path_.c_str(), path_.size() + 1);
    if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(fd_.get(), 1) != 0)
      std::abort();
  }
  ~Listener() {
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  [[nodiscard]] Endpoint endpoint() const { return Endpoint::unix_socket(path_); }
  UniqueFd accept() { return UniqueFd(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC)); }

 private:
  std::string dir_, path_;
  UniqueFd fd_;
};

uint64_t expect_command(FakePeer& peer, const std::string& name) {
  auto line = peer.read_line(30s);
  if (!line) {
    ADD_FAILURE() << "no command";
    return 0;
  }
  json msg = json::parse(*line, nullptr, false);
  EXPECT_EQ(msg.value("execute", ""), name) << *line;
  return msg.value("id", uint64_t{0});
}

std::string reply(uint64_t id, const json& ret) {
  return json{{"return", ret}, {"id", id}}.dump() + "\n";
}

TEST(Vm, WaitRunStateWaitsForAMonitorSilentLongerThanOneCommandsTimeout) {
  Listener l;
  std::unique_ptr<FakePeer> peer;
  std::thread server([&] {
    peer = std::make_unique<FakePeer>(l.accept());
    peer->send(
        R"({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": []}})"
        "\n");
    peer->send(reply(expect_command(*peer, "qmp_capabilities"), json::object()));
    // QEMU is loading the device's state: the first query-status is answered late.
    uint64_t id = expect_command(*peer, "query-status");
    std::this_thread::sleep_for(QmpClient::kDefaultTimeout + 1500ms);
    peer->send(reply(id, json{{"status", "running"}, {"running", true}}));
  });
  auto vm = Vm::attach("silent", "", l.endpoint(), 5s);
  ASSERT_TRUE(vm.ok()) << vm.error().message();
  auto r = vm->wait_run_state("running", 30s);
  server.join();
  EXPECT_TRUE(r.ok()) << r.error().message();
}

TEST(Vm, DescribeThreadsNamesEachThreadWithItsState) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  UniqueFd r(p[0]), w(p[1]);
  std::thread reader([&] {
    char c;
    if (::read(r.get(), &c, 1) < 0) return;
  });
  // This thread is running ("R"); the reader, once it is blocked, sleeps ("S") in a read.
  std::string threads;
  for (auto until = deadline_in(10s); Clock::now() < until; std::this_thread::sleep_for(10ms)) {
    threads = describe_threads(::getpid());
    if (threads.find(" S ") != std::string::npos) break;
  }
  EXPECT_EQ(::write(w.get(), "x", 1), 1);
  reader.join();
  EXPECT_NE(threads.find("qemu_unit R"), std::string::npos) << threads;
  EXPECT_NE(threads.find(" S "), std::string::npos) << threads;
  // The blocked reader names its system call and the file behind the descriptor.
  EXPECT_NE(threads.find("read(fd " + std::to_string(r.get()) + " pipe:["), std::string::npos)
      << threads;
  EXPECT_EQ(describe_threads(-1), "");
}

TEST(Vm, TimeLeftIsTheRestOfTheDeadlineAndAtLeastTheFloor) {
  EXPECT_GE(time_left(deadline_in(60s)), 59s);
  EXPECT_LE(time_left(deadline_in(60s)), 60s);
  EXPECT_EQ(time_left(Clock::now() - 5s), 1s);
  EXPECT_EQ(time_left(Clock::now() - 5s, 200ms), 200ms);
}

}  // namespace
}  // namespace mdevmig::qemu
