#pragma once
// Shared by the libFuzzer fuzzers (one per decoder of untrusted input): a fixed clock, quiet
// loggers, an invariant check that fails loudly, and a cursor over the fuzzer's bytes.

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <google/protobuf/util/message_differencer.h>

#include "carehub/core/clock.h"

namespace carehub::fuzz {

// An invariant of the code under test does not hold: report and abort so libFuzzer keeps the
// input as a crash.
#define CAREHUB_FUZZ_CHECK(cond, what)                                                   \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "fuzz invariant failed at %s:%d: %s (%s)\n", __FILE__, __LINE__, \
                   #cond, std::string(what).c_str());                                    \
      std::abort();                                                                      \
    }                                                                                    \
  } while (false)

// 2026-06-01T00:00:00Z: inputs replay the same way whatever the day.
class FixedClock final : public Clock {
 public:
  TimePoint Now() const override { return TimePoint(std::chrono::seconds(1'780'272'000)); }
};

// Nothing is printed: the default logger writes to a null sink, and carehub::Logger() gives every
// component logger it creates on first use the default logger's sinks.
inline void QuietLoggers() {
  auto sink = std::make_shared<spdlog::sinks::null_sink_mt>();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("fuzz", sink));
  spdlog::set_level(spdlog::level::off);
}

// Takes leading bytes of the input as parameters (chunk sizes, limits) and leaves the rest.
class Bytes {
 public:
  Bytes(const uint8_t* data, size_t size)
      : rest_(reinterpret_cast<const char*>(data), size) {}
  uint8_t Byte() {
    if (rest_.empty()) {
      return 0;
    }
    auto b = static_cast<uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    return b;
  }
  std::string_view rest() const { return rest_; }

 private:
  std::string_view rest_;
};

// A message that re-encodes to an equal message: what a decoded event must do before it is stored
// or published.
template <typename M>
void CheckReencodes(const M& message) {
  std::string bytes;
  CAREHUB_FUZZ_CHECK(message.SerializeToString(&bytes), "serialize");
  M again;
  CAREHUB_FUZZ_CHECK(again.ParseFromString(bytes), "re-parse of own encoding");
  CAREHUB_FUZZ_CHECK(google::protobuf::util::MessageDifferencer::Equals(message, again),
                     "re-encoded message differs");
}

}  // namespace carehub::fuzz
