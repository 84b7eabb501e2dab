// Errors as values: Error carries errno, the operation and its context; Result<T> holds a
// T or an Error, shaped like std::expected (GCC 12 has no <expected>).
#pragma once

#include <cerrno>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "base/check.h"

namespace mdevmig {

/// A failed operation: what was attempted, on what, and the errno it ended with.
struct Error {
  int errnum = 0;       ///< positive errno value (EINVAL, EIO, ...)
  std::string op;       ///< the operation, e.g. "VFIO_DEVICE_GET_REGION_INFO"
  std::string context;  ///< the object and state involved, e.g. "3f2a... region 9"
  /// A verdict of our own checks (corrupt input, an incompatible peer): no system call
  /// failed, `errnum` only classifies it (exit code, wire code) and `context` is the
  /// reason.
  bool verdict = false;

  /// One line for humans and logs: "OP on CONTEXT: strerror (errno N)", or for a
  /// verdict "OP: CONTEXT" (an errno that no system call returned means nothing to users).
  [[nodiscard]] std::string message() const;

  /// An error with an explicit errno (a system call's result, or a check we make
  /// ourselves that stands for one, e.g. EINVAL for a bad argument).
  [[nodiscard]] static Error make(int errnum, std::string op, std::string context = {});
  /// A verdict: `code` classifies it, `reason` says what is wrong.
  [[nodiscard]] static Error make_verdict(int code, std::string op, std::string reason);
  /// An error from the current `errno`; call it right after the failing syscall.
  [[nodiscard]] static Error from_errno(std::string op, std::string context = {});

  /// Prefixes more context (outer callers know the bigger picture): "outer: inner".
  Error& add_context(std::string_view outer);
  /// Appends a remark on the consequence: "context (note)".
  Error& add_note(std::string_view note);
};

/// The text of an errno value, thread-safe ("Unknown error N" for unknown values).
[[nodiscard]] std::string errno_text(int errnum);

/// A T or an Error. Implicitly constructible from either, so `return value;` and
/// `return Error::make(...);` both work in a function returning Result<T>.
template <typename T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<std::remove_cv_t<T>, Error>, "Result<Error> is ambiguous");
  static_assert(!std::is_reference_v<T>, "Result<T&> is not supported; return a pointer");

 public:
  using value_type = T;

  template <typename U = T>
  requires std::is_constructible_v<T, U&&> &&(!std::is_same_v<std::remove_cvref_t<U>, Result>)&&(
      !std::is_same_v<std::remove_cvref_t<U>, Error>)explicit(!std::is_convertible_v<U&&, T>)
      Result(U&& value)  // NOLINT(bugprone-forwarding-reference-overload): see requires
      : v_(std::in_place_index<0>, std::forward<U>(value)) {}            // NOLINT
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  [[nodiscard]] bool ok() const noexcept { return v_.index() == 0; }
  /// std::expected's name for ok().
  [[nodiscard]] bool has_value() const noexcept { return ok(); }
  explicit operator bool() const noexcept { return ok(); }

  /// The value; calling it on an error is a programmer bug and aborts.
  T& value() & {
    check_ok();
    return *std::get_if<0>(&v_);
  }
  const T& value() const& {
    check_ok();
    return *std::get_if<0>(&v_);
  }
  T&& value() && {
    check_ok();
    return std::move(*std::get_if<0>(&v_));
  }

  /// The error; calling it on a value is a programmer bug and aborts.
  Error& error() & {
    check_error();
    return *std::get_if<1>(&v_);
  }
  const Error& error() const& {
    check_error();
    return *std::get_if<1>(&v_);
  }
  Error&& error() && {
    check_error();
    return std::move(*std::get_if<1>(&v_));
  }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  template <typename U>
  [[nodiscard]] T value_or(U&& fallback) const& {
    return ok() ? value() : static_cast<T>(std::forward<U>(fallback));
  }
  template <typename U>
  [[nodiscard]] T value_or(U&& fallback) && {
    return ok() ? std::move(*this).value() : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  void check_ok() const {
    MDEVMIG_CHECK(ok(), "Result::value() on an error: %s", std::get_if<1>(&v_)->message().c_str());
  }
  void check_error() const { MDEVMIG_CHECK(!ok(), "Result::error() on a value"); }

  std::variant<T, Error> v_;
};

/// Success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  using value_type = void;

  Result() = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT

  [[nodiscard]] bool ok() const noexcept { return !error_.has_value(); }
  /// std::expected's name for ok().
  [[nodiscard]] bool has_value() const noexcept { return ok(); }
  explicit operator bool() const noexcept { return ok(); }

  /// Aborts on an error, like Result<T>::value(); exists so generic code and
  /// MDEVMIG_TRY treat both alike.
  void value() const {
    MDEVMIG_CHECK(ok(), "Result<void>::value() on an error: %s", error_->message().c_str());
  }

  Error& error() & {
    check_error();
    return *error_;
  }
  const Error& error() const& {
    check_error();
    return *error_;
  }
  Error&& error() && {
    check_error();
    return std::move(*error_);
  }

 private:
  void check_error() const { MDEVMIG_CHECK(!ok(), "Result::error() on a value"); }

  std::optional<Error> error_;
};

/// The success value of Result<void>, for symmetry: `return ok();`.
[[nodiscard]] inline Result<void> ok() { return {}; }

}  // namespace mdevmig

/// Evaluates `expr` (a Result<T>); on error returns that Error from the enclosing
/// function (which must return some Result<U>); otherwise yields the T (or void).
/// A GNU statement expression, supported by GCC and clang.
#define MDEVMIG_TRY(expr)                            \
  ({                                                 \
    auto&& mdevmig_try_result_ = (expr);             \
    if (!mdevmig_try_result_.ok()) [[unlikely]]      \
      return std::move(mdevmig_try_result_).error(); \
    std::move(mdevmig_try_result_).value();          \
  })
