#pragma once
// Deterministic synthetic provider events for tests, load generation and benchmarks: realistic
// activity and referral events (~300 bytes encoded) for a population of patients whose NHS numbers
// come from the synthetic 999 range with valid check digits. The same seed gives the same events.
// Not thread-safe: use one generator per thread.

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "carehub/core/clock.h"
#include "carehub/v1/event.pb.h"

namespace carehub {

struct SyntheticOptions {
  uint64_t seed = 1;
  uint32_t population = 10'000;
  // Publishers the events are spread over (envelope.publisher_ods); site_ods derives from them.
  std::vector<std::string> publishers = {"RXK", "RR8", "M85001", "M85002", "RY6"};
  // Share of referral events; the rest are activity.
  double referral_share = 0.3;
  // Event ids are "<id_prefix><counter>"; different prefixes never collide.
  std::string id_prefix = "syn-";
  // occurred_at values fall in the 90 days before this instant.
  Clock::TimePoint now = std::chrono::system_clock::now();
};

// The n-th synthetic NHS number (999 000 000x range), with a valid check digit.
std::string SyntheticNhsNumber(uint32_t n);

class SyntheticGenerator {
 public:
  explicit SyntheticGenerator(SyntheticOptions options);

  // A new valid event with a fresh event_id.
  v1::Event Next();

  // Breaks a valid event in one of several ways (bad NHS number, missing field, future timestamp,
  // bad ODS code, UPDATE without supersedes ...) and returns the reason code validation gives.
  std::string MakeInvalid(v1::Event* event);

  uint64_t generated() const { return counter_; }

 private:
  SyntheticOptions options_;
  std::mt19937_64 rng_;
  uint64_t counter_ = 0;
};

}  // namespace carehub
