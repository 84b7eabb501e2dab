// The migration proxy on the host: device-data detection in a stream cut anywhere,
// a relay in both directions with byte accounting, every connection of a multifd
// migration relayed to its own upstream connection, and its two faults (a truncated
// stream, one flipped byte inside VFIO device data).
#include "tools/qemu/proxy.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include <gtest/gtest.h>

namespace mdevmig::qemu {
namespace {

void put_be64(std::vector<uint8_t>& v, uint64_t x) {
  for (int i = 7; i >= 0; --i) v.push_back(static_cast<uint8_t>(x >> (8 * i)));
}

// Some "RAM" bytes, then a device chunk of `size` bytes (0x11, 0x12, ...), then more.
std::vector<uint8_t> stream_with_chunk(std::size_t before, uint64_t size, std::size_t after) {
  std::vector<uint8_t> s(before, 0xab);
  put_be64(s, kVfioDevDataMarker);
  put_be64(s, size);
  for (uint64_t i = 0; i < size; ++i) s.push_back(static_cast<uint8_t>(0x11 + i));
  s.insert(s.end(), after, 0xcd);
  return s;
}

TEST(DeviceDataScanner, FindsTheByteInAnySegmentation) {
  const auto s = stream_with_chunk(1000, 500, 300);
  const std::size_t want = 1000 + 16 + 100;
  for (std::size_t piece : {1u, 3u, 7u, 16u, 64u, 1000u, 5000u}) {
    DeviceDataScanner sc;
    long found = -1;
    std::size_t at = 0;
    for (std::size_t off = 0; off < s.size() && found < 0; off += piece) {
      std::size_t n = std::min(piece, s.size() - off);
      long i = sc.feed(s.data() + off, n, 100);
      if (i >= 0) found = static_cast<long>(off) + i;
      at = off;
    }
    (void)at;
    EXPECT_EQ(found, static_cast<long>(want)) << "pieces of " << piece;
  }
}

TEST(DeviceDataScanner, SkipsShortChunksAndMarkersInsideChunks) {
  // A chunk of 50 bytes (too short for skip 100) whose data holds a marker, then a
  // real chunk.
  std::vector<uint8_t> s(10, 0);
  put_be64(s, kVfioDevDataMarker);
  put_be64(s, 50);
  std::vector<uint8_t> inner;
  put_be64(inner, kVfioDevDataMarker);
  put_be64(inner, 10);
  inner.resize(50, 0x77);
  s.insert(s.end(), inner.begin(), inner.end());
  put_be64(s, kVfioDevDataMarker);
  put_be64(s, 0);  // end of a device's data: not a chunk
  const std::size_t real = s.size();
  auto tail = stream_with_chunk(0, 200, 10);
  s.insert(s.end(), tail.begin(), tail.end());
  DeviceDataScanner sc;
  EXPECT_EQ(sc.feed(s.data(), s.size(), 100), static_cast<long>(real + 16 + 100));
}

TEST(DeviceDataScanner, CountsDeviceBytesInAnySegmentation) {
  auto data = stream_with_chunk(3000, 70000, 20);
  auto more = stream_with_chunk(10, 5, 0);
  data.insert(data.end(), more.begin(), more.end());
  for (std::size_t piece : {1u, 7u, 16u, 4096u, 1u << 20}) {
    DeviceDataScanner s;
    for (std::size_t at = 0; at < data.size(); at += piece)
      s.count(data.data() + at, std::min(piece, data.size() - at));
    EXPECT_EQ(s.data_bytes(), 70005u) << "pieces of " << piece;
  }
}

TEST(DeviceDataScanner, NothingWithoutAMarker) {
  std::vector<uint8_t> s(4096, 0xff);
  DeviceDataScanner sc;
  EXPECT_EQ(sc.feed(s.data(), s.size(), 0), -1);
}

class ProxyTest : public testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mdevmig-proxy-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    ::unlink((dir_ + "/in").c_str());
    ::unlink((dir_ + "/up").c_str());
    ::rmdir(dir_.c_str());
  }
  // A one-connection server on dir/up: reads everything, then (optionally) answers.
  void serve_upstream(std::string answer) {
    int l = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, (dir_ + "/up").c_str());
    ASSERT_EQ(::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(l, 1), 0);
    upstream_ = std::thread([this, l, answer]() mutable {
      int c = ::accept(l, nullptr, nullptr);
      ::close(l);
      char buf[65536];
      for (;;) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        received_.insert(received_.end(), buf, buf + n);
        if (!answer.empty() && received_.size() >= expect_) {
          ::send(c, answer.data(), answer.size(), MSG_NOSIGNAL);
          answer.clear();
        }
      }
      ::close(c);
    });
  }
  int connect_proxy() {
    int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, (dir_ + "/in").c_str());
    EXPECT_EQ(::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    return s;
  }
  static void send_all(int fd, const std::vector<uint8_t>& v) {
    std::size_t done = 0;
    while (done < v.size()) {
      ssize_t n = ::send(fd, v.data() + done, v.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return;
      done += static_cast<std::size_t>(n);
    }
  }

  std::string dir_;
  std::thread upstream_;
  std::vector<uint8_t> received_;
  std::size_t expect_ = 0;
};

TEST_F(ProxyTest, RelaysBothWaysAndCounts) {
  std::vector<uint8_t> data(3 << 20);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7);
  expect_ = data.size();
  serve_upstream("SHUT");
  auto p = MigrationProxy::start(Endpoint::unix_socket(dir_ + "/in"),
                                 Endpoint::unix_socket(dir_ + "/up"));
  ASSERT_TRUE(p.ok()) << p.error().message();
  int c = connect_proxy();
  send_all(c, data);
  char back[8] = {};
  ssize_t n = ::recv(c, back, 4, MSG_WAITALL);  // the return path
  EXPECT_EQ(n, 4);
  EXPECT_EQ(std::string(back, 4), "SHUT");
  ::shutdown(c, SHUT_WR);
  upstream_.join();
  ::close(c);
  EXPECT_EQ(received_, data);
  EXPECT_EQ((*p)->bytes_forward(), data.size());
  EXPECT_EQ((*p)->bytes_back(), 4u);
  EXPECT_FALSE((*p)->timeline().empty());
  EXPECT_EQ((*p)->timeline().back().bytes, data.size());
  EXPECT_FALSE((*p)->fault_fired());
  (*p)->stop();
}

TEST_F(ProxyTest, RelaysEveryConnectionToItsOwnUpstream) {
  // Multifd: the main channel, then two more; each must reach its own upstream
  // connection intact, in order, and the counts add up.
  constexpr int kConns = 3;
  int l = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strcpy(a.sun_path, (dir_ + "/up").c_str());
  ASSERT_EQ(::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(l, kConns), 0);
  std::vector<std::vector<uint8_t>> got(kConns);
  std::thread server([&] {
    std::vector<int> cs;
    cs.reserve(kConns);
    for (int i = 0; i < kConns; ++i) cs.push_back(::accept(l, nullptr, nullptr));
    // The last channel answers on its return path once it has its first byte.
    char b;
    if (::recv(cs[2], &b, 1, MSG_WAITALL) == 1) got[2].push_back(static_cast<uint8_t>(b));
    ::send(cs[2], "ACK", 3, MSG_NOSIGNAL);
    for (int i = 0; i < kConns; ++i) {
      char buf[65536];
      for (ssize_t n; (n = ::recv(cs[i], buf, sizeof buf, 0)) > 0;)
        got[i].insert(got[i].end(), buf, buf + n);
      ::close(cs[i]);
    }
  });
  auto p = MigrationProxy::start(Endpoint::unix_socket(dir_ + "/in"),
                                 Endpoint::unix_socket(dir_ + "/up"));
  ASSERT_TRUE(p.ok()) << p.error().message();
  std::vector<std::vector<uint8_t>> data = {stream_with_chunk(1000, 50000, 300),
                                            std::vector<uint8_t>(200000, 0x21),
                                            std::vector<uint8_t>(70000, 0x42)};
  std::vector<int> cs;
  cs.reserve(kConns);
  for (int i = 0; i < kConns; ++i) cs.push_back(connect_proxy());
  // Interleaved, as multifd channels are.
  std::vector<std::thread> senders;
  senders.reserve(kConns);
  for (int i = 0; i < kConns; ++i) senders.emplace_back([&, i] { send_all(cs[i], data[i]); });
  for (auto& t : senders) t.join();
  char back[3] = {};
  EXPECT_EQ(::recv(cs[2], back, 3, MSG_WAITALL), 3);
  EXPECT_EQ(std::string(back, 3), "ACK");
  for (int c : cs) ::shutdown(c, SHUT_WR);
  server.join();
  ::close(l);
  for (int c : cs) ::close(c);
  for (int i = 0; i < kConns; ++i) EXPECT_EQ(got[i], data[i]) << "connection " << i;
  EXPECT_EQ((*p)->connections(), 3u);
  EXPECT_EQ((*p)->bytes_forward(), data[0].size() + data[1].size() + data[2].size());
  EXPECT_EQ((*p)->bytes_forward_main(), data[0].size());
  EXPECT_EQ((*p)->device_data_main(), 50000u);
  EXPECT_EQ((*p)->bytes_back(), 3u);
  EXPECT_EQ((*p)->timeline().back().bytes, (*p)->bytes_forward());
  (*p)->stop();
}

TEST_F(ProxyTest, TruncatesAtTheByte) {
  std::vector<uint8_t> data(1 << 20, 0x42);
  serve_upstream("");
  auto p = MigrationProxy::start(Endpoint::unix_socket(dir_ + "/in"),
                                 Endpoint::unix_socket(dir_ + "/up"),
                                 MigrationProxy::Fault::kTruncate, 300000);
  ASSERT_TRUE(p.ok());
  int c = connect_proxy();
  send_all(c, data);
  upstream_.join();
  EXPECT_EQ(received_.size(), 300000u);
  EXPECT_TRUE((*p)->fault_fired());
  // The source sees its side closed.
  char b;
  EXPECT_LE(::recv(c, &b, 1, 0), 0);
  ::close(c);
}

TEST_F(ProxyTest, CorruptsOneByteOfDeviceDataAfterTheOffset) {
  // Two device chunks: the one before fault_at must be left alone.
  auto data = stream_with_chunk(5000, 4000, 100);
  auto second = stream_with_chunk(2000, 9000, 500);
  const std::size_t second_at = data.size();
  data.insert(data.end(), second.begin(), second.end());
  expect_ = data.size();
  serve_upstream("");
  auto p = MigrationProxy::start(Endpoint::unix_socket(dir_ + "/in"),
                                 Endpoint::unix_socket(dir_ + "/up"),
                                 MigrationProxy::Fault::kCorruptDeviceData, 9500);
  ASSERT_TRUE(p.ok());
  int c = connect_proxy();
  send_all(c, data);
  ::shutdown(c, SHUT_WR);
  upstream_.join();
  ::close(c);
  ASSERT_EQ(received_.size(), data.size());
  std::vector<std::size_t> diff;
  for (std::size_t i = 0; i < data.size(); ++i)
    if (received_[i] != data[i]) diff.push_back(i);
  ASSERT_EQ(diff.size(), 1u);
  EXPECT_EQ(diff[0], second_at + 2000 + 16 + 100);
  EXPECT_TRUE((*p)->fault_fired());
  EXPECT_NE((*p)->fault_note().find("VFIO device data"), std::string::npos);
}

TEST(CorruptFile, FlipsOneByteOfTheFirstChunkAfterTheOffset) {
  char path[] = "/tmp/mdevmig-corrupt-test.XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  auto data = stream_with_chunk(3000, 1000, 10);
  auto second = stream_with_chunk(10, 2000, 10);
  const std::size_t second_at = data.size();
  data.insert(data.end(), second.begin(), second.end());
  ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  auto at = corrupt_device_data_in_file(path, second_at);  // past the first chunk's header
  ASSERT_TRUE(at.ok()) << at.error().message();
  EXPECT_EQ(*at, second_at + 10 + 16 + 100);
  std::vector<uint8_t> back(data.size());
  ASSERT_EQ(::pread(fd, back.data(), back.size(), 0), static_cast<ssize_t>(back.size()));
  EXPECT_EQ(back[*at], data[*at] ^ 0x5a);
  back[*at] = data[*at];
  EXPECT_EQ(back, data);
  EXPECT_EQ(corrupt_device_data_in_file(path, data.size()).error().errnum, ENOENT);
  ::close(fd);
  ::unlink(path);
}

}  // namespace
}  // namespace mdevmig::qemu
