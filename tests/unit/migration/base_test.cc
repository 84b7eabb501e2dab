// Result<T>, Error, MDEVMIG_TRY, MDEVMIG_CHECK and UniqueFd.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "base/check.h"
#include "base/fd.h"
#include "base/result.h"

namespace mdevmig {
namespace {

static_assert(!std::is_copy_constructible_v<UniqueFd>);
static_assert(std::is_nothrow_move_constructible_v<UniqueFd>);
static_assert(!std::is_copy_constructible_v<Result<UniqueFd>>);
// UniqueFd(int) is explicit, so a bare int must not silently become a Result<UniqueFd>.
static_assert(!std::is_convertible_v<int, Result<UniqueFd>>);
static_assert(std::is_convertible_v<Error, Result<int>>);
static_assert(std::is_convertible_v<Error, Result<void>>);

TEST(Error, MessageHasOpContextTextAndErrno) {
  const Error e = Error::make(EINVAL, "VFIO_DEVICE_GET_REGION_INFO", "3f2a-uuid region 9");
  EXPECT_EQ(e.message(),
            "VFIO_DEVICE_GET_REGION_INFO on 3f2a-uuid region 9: Invalid argument (errno 22)");
}

// A verdict of our own checks (corrupt input, an incompatible peer) is no system call's
// failure: its code classifies it and is not shown; its context is the reason.
TEST(Error, AVerdictShowsTheReasonAndNoErrnoText) {
  Error e = Error::make_verdict(EMEDIUMTYPE, "read save-file header",
                                "f.mdevmig: the header's XXH3 does not match");
  e.add_note("device not touched");
  EXPECT_EQ(
      e.message(),
      "read save-file header: f.mdevmig: the header's XXH3 does not match (device not touched)");
  EXPECT_EQ(e.errnum, EMEDIUMTYPE);
  Error plain = Error::make(EIO, "read", "f");
  plain.add_note("device not touched");
  EXPECT_EQ(plain.message(), "read on f (device not touched): Input/output error (errno 5)");
}

TEST(Error, MessageWithoutContext) {
  EXPECT_EQ(Error::make(ENOENT, "open").message(), "open: No such file or directory (errno 2)");
}

TEST(Error, MessageOfUnknownErrnoAndEmptyOp) {
  const std::string m = Error::make(99999, "").message();
  EXPECT_NE(m.find("(unknown operation)"), std::string::npos) << m;
  EXPECT_NE(m.find("99999"), std::string::npos) << m;
}

TEST(Error, FromErrnoCapturesErrno) {
  errno = EBUSY;
  const Error e = Error::from_errno("VFIO_GROUP_SET_CONTAINER", "/dev/vfio/7");
  EXPECT_EQ(e.errnum, EBUSY);
  EXPECT_EQ(e.op, "VFIO_GROUP_SET_CONTAINER");
  EXPECT_EQ(e.context, "/dev/vfio/7");
}

TEST(Error, AddContextPrefixes) {
  Error e = Error::make(EIO, "pread", "region 0");
  e.add_context("dev-a");
  EXPECT_EQ(e.context, "dev-a: region 0");
  Error bare = Error::make(EIO, "pread");
  bare.add_context("dev-a");
  EXPECT_EQ(bare.context, "dev-a");
}

TEST(Result, HoldsValue) {
  Result<int> r = 42;
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(static_cast<bool>(r));
  EXPECT_EQ(*r, 42);
  EXPECT_EQ(r.value(), 42);
  EXPECT_EQ(r.value_or(7), 42);
}

TEST(Result, HoldsError) {
  Result<int> r = Error::make(EAGAIN, "read");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().errnum, EAGAIN);
  EXPECT_EQ(r.value_or(7), 7);
}

TEST(Result, ArrowAndMoveOnlyValue) {
  Result<std::string> s = std::string("abc");
  EXPECT_EQ(s->size(), 3u);
  Result<std::unique_ptr<int>> p = std::make_unique<int>(5);
  std::unique_ptr<int> taken = std::move(p).value();
  EXPECT_EQ(*taken, 5);
}

TEST(Result, VoidResult) {
  Result<void> good = ok();
  EXPECT_TRUE(good.ok());
  Result<void> bad = Error::make(EPERM, "x");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().errnum, EPERM);
}

Result<int> parse_positive(int v) {
  if (v <= 0) return Error::make(EINVAL, "parse_positive", std::to_string(v));
  return v;
}

Result<void> require_even(int v) {
  if (v % 2 != 0) return Error::make(EDOM, "require_even");
  return ok();
}

Result<UniqueFd> open_null() {
  const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error::from_errno("open", "/dev/null");
  return UniqueFd(fd);
}

Result<int> twice_positive_even(int v) {
  const int p = MDEVMIG_TRY(parse_positive(v));
  MDEVMIG_TRY(require_even(p));
  UniqueFd fd = MDEVMIG_TRY(open_null());
  if (!fd.valid()) return Error::make(EBADF, "open_null");
  return 2 * p;
}

TEST(Result, TryPropagatesFirstError) {
  EXPECT_EQ(*twice_positive_even(4), 8);
  auto neg = twice_positive_even(-3);
  ASSERT_FALSE(neg.ok());
  EXPECT_EQ(neg.error().op, "parse_positive");
  EXPECT_EQ(neg.error().context, "-3");
  auto odd = twice_positive_even(3);
  ASSERT_FALSE(odd.ok());
  EXPECT_EQ(odd.error().errnum, EDOM);
}

TEST(ResultDeathTest, ValueOnErrorAbortsWithMessage) {
  Result<int> r = Error::make(EIO, "VFIO_DEVICE_RESET", "dev-x");
  EXPECT_DEATH((void)r.value(), "check failed: ok\\(\\).*VFIO_DEVICE_RESET on dev-x");
}

TEST(ResultDeathTest, ErrorOnValueAborts) {
  Result<int> r = 1;
  EXPECT_DEATH((void)r.error(), "Result::error\\(\\) on a value");
}

TEST(CheckDeathTest, PrintsFileLineConditionAndContext) {
  const int pages = 5;
  EXPECT_DEATH(MDEVMIG_CHECK(pages < 3, "pages=%d", pages),
               "base_test.cc:[0-9]+: check failed: pages < 3: pages=5");
}

TEST(CheckDeathTest, WithoutMessage) {
  EXPECT_DEATH(MDEVMIG_CHECK(1 + 1 == 3), "check failed: 1 \\+ 1 == 3");
}

TEST(Check, PassingCheckDoesNothing) { MDEVMIG_CHECK(true, "never printed %d", 1); }

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }

TEST(UniqueFd, ClosesOnDestruction) {
  int raw = -1;
  {
    UniqueFd fd = std::move(open_null()).value();
    raw = fd.get();
    EXPECT_TRUE(is_open(raw));
  }
  EXPECT_FALSE(is_open(raw));
}

TEST(UniqueFd, MoveTransfersOwnership) {
  UniqueFd a = std::move(open_null()).value();
  const int raw = a.get();
  UniqueFd b = std::move(a);
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): moved-from state is defined
  EXPECT_EQ(b.get(), raw);
  UniqueFd c;
  c = std::move(b);
  EXPECT_EQ(c.get(), raw);
  EXPECT_TRUE(is_open(raw));
}

TEST(UniqueFd, ReleaseAndReset) {
  UniqueFd a = std::move(open_null()).value();
  const int raw = a.release();
  EXPECT_FALSE(a.valid());
  EXPECT_TRUE(is_open(raw));
  a.reset(raw);
  EXPECT_EQ(a.get(), raw);
  a.reset();
  EXPECT_FALSE(is_open(raw));
  EXPECT_FALSE(static_cast<bool>(a));
}

}  // namespace
}  // namespace mdevmig
