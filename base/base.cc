#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/check.h"
#include "base/fd.h"
#include "base/result.h"

namespace mdevmig {
namespace {

// strerror_r has two signatures (XSI returns int, GNU returns char*); overloads on the
// return type pick whichever this libc declares.
[[maybe_unused]] const char* strerror_result(int rc, const char* buf) {
  return rc == 0 ? buf : nullptr;
}
[[maybe_unused]] const char* strerror_result(const char* text, const char*) { return text; }

}  // namespace

std::string errno_text(int errnum) {
  char buf[128] = {};
  const char* text = strerror_result(strerror_r(errnum, buf, sizeof(buf)), buf);
  if (text == nullptr || *text == '\0') return "Unknown error " + std::to_string(errnum);
  return text;
}

std::string Error::message() const {
  std::string out = op.empty() ? std::string("(unknown operation)") : op;
  if (verdict) {
    if (!context.empty()) out += ": " + context;
    return out;
  }
  if (!context.empty()) {
    out += " on ";
    out += context;
  }
  out += ": ";
  out += errno_text(errnum);
  out += " (errno ";
  out += std::to_string(errnum);
  out += ")";
  return out;
}

Error Error::make(int errnum, std::string op, std::string context) {
  return Error{errnum, std::move(op), std::move(context)};
}

Error Error::make_verdict(int code, std::string op, std::string reason) {
  Error e{code, std::move(op), std::move(reason)};
  e.verdict = true;
  return e;
}

Error Error::from_errno(std::string op, std::string context) {
  // Read errno before anything (string moves may allocate) can clobber it.
  const int saved = errno;
  return Error{saved, std::move(op), std::move(context)};
}

Error& Error::add_context(std::string_view outer) {
  if (context.empty()) {
    context = outer;
  } else {
    std::string joined(outer);
    joined += ": ";
    joined += context;
    context = std::move(joined);
  }
  return *this;
}

Error& Error::add_note(std::string_view note) {
  context += context.empty() ? "(" : " (";
  context += note;
  context += ")";
  return *this;
}

void UniqueFd::reset(int fd) noexcept {
  const int old = std::exchange(fd_, fd);
  // Linux releases the descriptor even when close() reports EINTR; retrying could close
  // a descriptor another thread just received.
  if (old >= 0) ::close(old);
}

namespace detail {

void check_failed(const char* file, int line, const char* cond) {
  std::fprintf(stderr, "%s:%d: check failed: %s\n", file, line, cond);
  std::fflush(stderr);
  std::abort();
}

void check_failed(const char* file, int line, const char* cond, const char* fmt, ...) {
  std::fprintf(stderr, "%s:%d: check failed: %s: ", file, line, cond);
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fputc('\n', stderr);
  std::fflush(stderr);
  std::abort();
}

}  // namespace detail
}  // namespace mdevmig
