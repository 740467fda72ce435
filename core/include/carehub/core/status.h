#pragma once
// Errors are values: core code returns Status / Result<T>; exceptions from third-party libraries
// are caught at the edge and turned into these.
//
// Thread-safety: plain values; a const Status or Result may be read from several threads at once.

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace carehub {

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  static Status Ok() { return Status(); }
  static Status Error(std::string code, std::string message) {
    return Status(std::move(code), std::move(message));
  }

  bool ok() const { return code_.empty(); }
  // A stable machine-readable reason, e.g. "invalid_nhs_number". Empty when ok().
  const std::string& code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const { return ok() ? "ok" : code_ + ": " + message_; }

 private:
  Status(std::string code, std::string message)
      : code_(std::move(code)), message_(std::move(message)) {}
  std::string code_;
  std::string message_;
};

// The code of a Status that reports a bug in carehub itself, not bad input.
inline constexpr char kInternalErrorCode[] = "internal";

// Either a T or an error Status. ok() is true exactly when it holds a T.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  // `status` must be an error. Built from an OK status a Result would hold neither a value nor an
  // error, yet report ok() == false with an empty code(): a caller bug that used to surface far
  // away as a nameless failure. Debug builds assert; release builds hold the error
  // "internal: Result built from an OK status" so the failure is at least named.
  Result(Status status) : value_(std::move(status)) {  // NOLINT: implicit by design
    if (std::get<Status>(value_).ok()) {
      assert(false && "Result built from an OK status");
      value_ = Status::Error(kInternalErrorCode, "Result built from an OK status");
    }
  }

  bool ok() const { return std::holds_alternative<T>(value_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(value_);
  }
  T& value() & { return std::get<T>(value_); }
  const T& value() const& { return std::get<T>(value_); }
  T&& value() && { return std::get<T>(std::move(value_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  std::variant<T, Status> value_;
};

}  // namespace carehub

// Returns from the enclosing function (which returns Status or Result<T>) with the Status `expr`
// evaluates to when that Status is an error; `expr` is evaluated exactly once. The one definition
// for the project: config parsers, validation and the demo used to carry four private copies.
#define CAREHUB_RETURN_IF_ERROR(expr)                          \
  do {                                                         \
    ::carehub::Status carehub_return_if_error_status = (expr); \
    if (!carehub_return_if_error_status.ok()) {                \
      return carehub_return_if_error_status;                   \
    }                                                          \
  } while (false)
