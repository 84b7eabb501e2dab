// The liburing data path with short transfers forced: O_NONBLOCK pipes with a one-page
// buffer (short writes and -EAGAIN), socketpairs with tiny buffers, files whose size is
// not a multiple of the slot size (short reads at the end), read errors delivered once,
// timeouts, and the framing reader on hostile input.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "migration/io/cancel.h"
#include "migration/io/framed.h"
#include "migration/io/net.h"
#include "migration/io/uring.h"
#include "migration/schema/codec.h"

namespace mdevmig::io {
namespace {

std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x = x * 1103515245u + 12345u;
    b = static_cast<std::byte>(x >> 16);
  }
  return v;
}

// Reads everything from `fd` in small pieces, slowly at first, so the writer sees a full
// pipe or socket.
std::vector<std::byte> slow_drain(int fd, std::size_t piece) {
  std::vector<std::byte> out;
  std::vector<std::byte> buf(piece);
  int n_reads = 0;
  for (;;) {
    if (n_reads++ < 50) std::this_thread::sleep_for(std::chrono::microseconds(200));
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EAGAIN) continue;
    if (n <= 0) break;
    out.insert(out.end(), buf.begin(), buf.begin() + n);
  }
  return out;
}

TEST(Uring, StreamWriterRequeuesShortWritesAndEagainOnANonblockingPipe) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  ASSERT_GT(::fcntl(p[1], F_SETPIPE_SZ, 4096), 0);
  ASSERT_EQ(::fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
  UniqueFd rd(p[0]), wr(p[1]);
  const auto data = pattern(3u << 20, 1);
  std::vector<std::byte> got;
  std::thread reader([&] { got = slow_drain(rd.get(), 1000); });
  {
    auto w = Writer::create(wr.get(), kStream, {4, 64u << 10, "pipe"});
    ASSERT_TRUE(w.ok()) << w.error().message();
    // Odd-sized writes that straddle slots.
    for (std::size_t off = 0; off < data.size(); off += 12345) {
      const std::size_t n = std::min<std::size_t>(12345, data.size() - off);
      ASSERT_TRUE(w->write(std::span(data).subspan(off, n)).ok());
    }
    auto f = w->flush();
    ASSERT_TRUE(f.ok()) << f.error().message();
    EXPECT_EQ(w->stats().bytes, data.size());
    EXPECT_GT(w->stats().short_transfers + w->stats().eagain_retries, 0u)
        << "a 4 KiB non-blocking pipe took 64 KiB writes whole";
    EXPECT_EQ(w->stats().max_in_flight, 1u) << "stream writes must stay in order";
    EXPECT_GT(w->stats().reap_batches, 0u);
  }
  wr.reset();
  reader.join();
  ASSERT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
}

TEST(Uring, SocketpairWithTinyBuffersBothWays) {
  auto sp = stream_pair();
  ASSERT_TRUE(sp.ok());
  const int small = 4096;
  ::setsockopt(sp->first.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  ::setsockopt(sp->second.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  const auto data = pattern(2u << 20, 2);
  std::vector<std::byte> got;
  std::thread reader([&] {
    auto r = Reader::create(sp->second.get(), kStream, {3, 32u << 10, "socket"});
    ASSERT_TRUE(r.ok());
    for (;;) {
      auto s = r->next(7777);
      ASSERT_TRUE(s.ok()) << s.error().message();
      if (s->empty()) break;
      got.insert(got.end(), s->begin(), s->end());
    }
    EXPECT_GT(r->stats().short_transfers, 0u);
  });
  {
    auto w = Writer::create(sp->first.get(), kStream, {4, 256u << 10, "socket"});
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->write(data).ok());
    ASSERT_TRUE(w->flush().ok());
  }
  ::shutdown(sp->first.get(), SHUT_WR);
  reader.join();
  EXPECT_TRUE(got == data);
}

class TempFile {
 public:
  TempFile() {
    std::string t = (std::filesystem::temp_directory_path() / "mdevmig-io-XXXXXX").string();
    fd_.reset(::mkstemp(t.data()));
    path_ = t;
  }
  ~TempFile() { ::unlink(path_.c_str()); }
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
  std::string path_;
};

TEST(Uring, FileWriteBehindAndReadAheadWithAShortLastRead) {
  TempFile f;
  const auto data = pattern((5u << 20) + 333, 3);  // not a multiple of the slot size
  {
    auto w = Writer::create(f.fd(), 0, {8, 256u << 10, "file"});
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->write(data).ok());
    ASSERT_TRUE(w->flush().ok());
    EXPECT_GT(w->stats().max_in_flight, 1u) << "file writes should overlap";
  }
  auto r = Reader::create(f.fd(), 0, {8, 256u << 10, "file"});
  ASSERT_TRUE(r.ok());
  std::vector<std::byte> got(data.size() + 100);
  auto n = r->read_full(got);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, data.size());
  got.resize(*n);
  EXPECT_TRUE(got == data);
  EXPECT_GE(r->stats().short_transfers, 1u) << "the last slot ends short";
  EXPECT_GT(r->stats().max_in_flight, 1u) << "reads should run ahead";
  // At the end: empty, again and again.
  auto end = r->next();
  ASSERT_TRUE(end.ok());
  EXPECT_TRUE(end->empty());
}

TEST(Uring, ReadErrorsAreDeliveredAfterTheDataAndTimeoutsAreReported) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  UniqueFd rd(p[0]), wr(p[1]);
  auto r = Reader::create(rd.get(), kStream, {2, 4096, "pipe"});
  ASSERT_TRUE(r.ok());
  auto t = r->next(SIZE_MAX, std::chrono::milliseconds(50));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().errnum, ETIMEDOUT);
  EXPECT_FALSE(r->ready());
  ASSERT_EQ(::write(wr.get(), "abc", 3), 3);
  auto s = r->next();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->size(), 3u);
  wr.reset();
  auto e = r->next();
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->empty());

  // A write-only fd cannot be read: the error comes back as a value.
  int q[2];
  ASSERT_EQ(::pipe2(q, O_CLOEXEC), 0);
  UniqueFd qr(q[0]), qw(q[1]);
  auto bad = Reader::create(qw.get(), kStream, {2, 4096, "write end"});
  ASSERT_TRUE(bad.ok());
  auto err = bad->next();
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(err.error().errnum, EBADF);
  // Writing to a closed socket is an error (EPIPE), not SIGPIPE.
  auto sp = stream_pair();
  ASSERT_TRUE(sp.ok());
  sp->second.reset();
  auto w = Writer::create(sp->first.get(), kStream, {2, 4096, "socket"});
  ASSERT_TRUE(w.ok());
  (void)w->write(pattern(100, 4));
  auto f = w->flush();
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().errnum, EPIPE);
}

TEST(Uring, DestroyingAReaderWithAReadInFlightCancelsIt) {
  auto sp = stream_pair();
  ASSERT_TRUE(sp.ok());
  auto r = Reader::create(sp->first.get(), kStream, {2, 4096, "idle socket"});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->ready());  // a recv is now in flight on a silent socket
  // Destruction must cancel it and reap the completion before the buffers go (ASan
  // would catch a late write into freed memory).
}

TEST(Uring, ACancelEndsWaitsInEveryThreadWithEintr) {
  // A reader waiting for a silent peer in another thread (a migration's destination)
  // and a writer whose peer reads nothing both give up once the Cancel fires, whenever
  // that happens relative to their waits; so does accept_one.
  auto silent = stream_pair();  // nobody writes to .second
  auto full = stream_pair();    // nobody reads .second
  ASSERT_TRUE(silent.ok() && full.ok());
  auto cancel = Cancel::create();
  ASSERT_TRUE(cancel.ok());
  auto reader =
      Reader::create(silent->first.get(), kStream, {2, 4096, "silent peer", cancel->get()});
  auto writer =
      Writer::create(full->first.get(), kStream, {2, 1u << 16, "full peer", cancel->get()});
  ASSERT_TRUE(reader.ok() && writer.ok());
  auto listener = listen_tcp({"127.0.0.1", 0});
  ASSERT_TRUE(listener.ok());
  std::optional<Result<std::span<const std::byte>>> got;
  std::optional<Result<void>> wrote;
  std::optional<Result<UniqueFd>> accepted;
  std::thread t1([&] { got.emplace(reader->next()); });
  std::thread t2([&] {
    std::vector<std::byte> lots(1u << 20);
    Result<void> r = ok();
    for (int i = 0; i < 64 && r.ok(); ++i) r = writer->write(lots);  // the buffer fills: waits
    wrote.emplace(std::move(r));
  });
  std::thread t3([&] {
    accepted.emplace(accept_one(listener->get(), std::chrono::minutes(5), cancel->get()));
  });
  (*cancel)->request(SIGINT);
  t1.join();
  t2.join();
  t3.join();
  ASSERT_FALSE(got->ok());
  EXPECT_EQ(got->error().errnum, EINTR);
  EXPECT_NE(got->error().message().find("interrupted by SIGINT"), std::string::npos)
      << got->error().message();
  ASSERT_FALSE(wrote->ok()) << "64 MiB fit into an unread socket";
  EXPECT_EQ(wrote->error().errnum, EINTR);
  ASSERT_FALSE(accepted->ok());
  EXPECT_EQ(accepted->error().errnum, EINTR);
}

TEST(Framed, ReadsWholeMessagesAndRefusesTruncationAndAbsurdSizes) {
  schema::Encoder enc;
  std::vector<std::byte> stream;
  for (int i = 0; i < 3; ++i) {
    const auto data = pattern(1000 * (i + 1), 10 + i);
    auto m = enc.wire_chunk(i, 0, schema::Phase::kPreCopy, data);
    stream.insert(stream.end(), m.begin(), m.end());
  }
  auto feed = [](std::span<const std::byte> bytes, std::size_t max) {
    auto sp = stream_pair();
    std::thread t([&, fd = sp->first.get()] {
      for (std::size_t off = 0; off < bytes.size(); off += 333) {
        const std::size_t n = std::min<std::size_t>(333, bytes.size() - off);
        if (::write(fd, bytes.data() + off, n) != static_cast<ssize_t>(n)) break;
      }
      ::shutdown(fd, SHUT_WR);
    });
    auto r = Reader::create(sp->second.get(), kStream, {2, 4096, "s"});
    FrameReader fr(*r, max);
    std::vector<std::size_t> sizes;
    Result<void> status = ok();
    for (;;) {
      auto m = fr.next();
      if (!m.ok()) {
        status = m.error();
        break;
      }
      if (m->empty()) break;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(m->data()) % 8, 0u);
      auto d = schema::decode_wire(*m, 0);
      EXPECT_TRUE(d.ok());
      sizes.push_back(m->size());
    }
    t.join();
    return std::make_pair(sizes, status);
  };
  auto [sizes, st] = feed(stream, schema::kMaxFrameBytes);
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(sizes.size(), 3u);
  // Cut inside the last message: two messages, then a corrupt-input error.
  auto [sizes2, st2] = feed(std::span(stream).first(stream.size() - 5), schema::kMaxFrameBytes);
  EXPECT_EQ(sizes2.size(), 2u);
  ASSERT_FALSE(st2.ok());
  EXPECT_EQ(st2.error().errnum, schema::kCorruptErrno);
  // A limit below the messages' size: refused before allocating.
  auto [sizes3, st3] = feed(stream, 512);
  EXPECT_TRUE(sizes3.empty());
  ASSERT_FALSE(st3.ok());
  EXPECT_EQ(st3.error().errnum, schema::kCorruptErrno);
}

TEST(Net, ParsesHostPortAndConnectsOverLoopback) {
  auto a = parse_host_port("127.0.0.1:4444", "x");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 4444);
  auto b = parse_host_port("5555", "127.0.0.1");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "127.0.0.1");
  auto c = parse_host_port("[::1]:1", "x");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "::1");
  for (const char* bad : {"", "host:", "host:99999", "host:12x", ":80"}) {
    EXPECT_FALSE(parse_host_port(bad, "").ok()) << bad;
  }
  auto l = listen_tcp({"127.0.0.1", 0});
  ASSERT_TRUE(l.ok()) << l.error().message();
  auto port = local_port(l->get());
  ASSERT_TRUE(port.ok());
  auto conn = connect_tcp({"127.0.0.1", *port});
  ASSERT_TRUE(conn.ok());
  auto acc = accept_one(l->get(), std::chrono::seconds(5));
  ASSERT_TRUE(acc.ok());
  ASSERT_EQ(::write(conn->get(), "x", 1), 1);
  char c1 = 0;
  ASSERT_EQ(::read(acc->get(), &c1, 1), 1);
  EXPECT_EQ(c1, 'x');
  auto none = accept_one(l->get(), std::chrono::milliseconds(10));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().errnum, ETIMEDOUT);
}

}  // namespace
}  // namespace mdevmig::io
