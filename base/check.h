// MDEVMIG_CHECK: an assertion for programmer bugs (never for bad input or failed
// syscalls, which are Errors). It stays on in release builds: a broken invariant in a
// migration engine must stop before it corrupts a device's state.
#pragma once

namespace mdevmig::detail {

/// Prints "file:line: check failed: cond" plus the formatted context, then aborts.
[[noreturn]] void check_failed(const char* file, int line, const char* cond);
[[noreturn]] void check_failed(const char* file, int line, const char* cond, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));

}  // namespace mdevmig::detail

/// Aborts with file:line, the condition text and an optional printf-style message when
/// `cond` is false. Usage: MDEVMIG_CHECK(n <= size_, "page %llu of %llu", n, size_);
#define MDEVMIG_CHECK(cond, ...)                                                             \
  do {                                                                                       \
    if (!(cond)) [[unlikely]]                                                                \
      ::mdevmig::detail::check_failed(__FILE__, __LINE__, #cond __VA_OPT__(, ) __VA_ARGS__); \
  } while (0)
