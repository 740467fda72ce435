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
  // Patients 0..population-1 get SyntheticNhsNumber(0..population-1); capped at 900,000.
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

// The n-th synthetic NHS number (999 000 000x range), with a valid check digit. Stems whose check
// digit would be 10 are skipped: each run of ten stems contributes nine numbers, so the mapping is
// O(1), increasing and one-to-one for n < 900,000; larger n wrap around.
std::string SyntheticNhsNumber(uint32_t n);

// The ways MakeInvalid can break an event, each giving exactly one ValidateEvent reason (with
// default ValidationLimits and `now` within a few hours of SyntheticOptions::now).
enum class InvalidKind {
  kBadNhsCheckDigit,         // invalid_nhs_number
  kMissingNhsNumber,         // missing_field (no NHS number and no local MRN either)
  kFutureOccurredAt,         // future_timestamp (a day after options.now)
  kBadPublisherOds,          // invalid_ods_code
  kUpdateWithoutSupersedes,  // invalid_lifecycle
  kMissingEventId,           // missing_field
  kAncientOccurredAt,        // invalid_timestamp (1850)
  kMissingBody,              // missing_field
  kUnsetEventType,           // invalid_event_type
  kBadPostcode,              // invalid_field
  // event_too_large: a note over 64 KiB. Pass the new ByteSizeLong() to ValidateEvent.
  kOversized,
};
inline constexpr int kInvalidKindCount = static_cast<int>(InvalidKind::kOversized) + 1;

class SyntheticGenerator {
 public:
  explicit SyntheticGenerator(SyntheticOptions options);

  // A new valid event with a fresh event_id.
  v1::Event Next();

  // Breaks a valid event in one of several ways (bad NHS number, missing field, future timestamp,
  // bad ODS code, UPDATE without supersedes ...) and returns the reason code validation gives.
  // Chooses among every InvalidKind except kOversized, which would distort load tests.
  std::string MakeInvalid(v1::Event* event);
  // Breaks it in the given way; returns the reason code.
  std::string MakeInvalid(v1::Event* event, InvalidKind kind);

  uint64_t generated() const { return counter_; }

 private:
  void FillPatient(uint32_t index, const std::string& publisher, v1::Patient* patient) const;
  const std::string& RegisteredPractice(uint32_t index) const;
  uint32_t PickPatient(const std::string& publisher);
  void FillActivity(const std::string& publisher, int64_t occurred, v1::ActivityEvent* activity);
  void FillReferral(const std::string& publisher, const v1::Patient& patient, int64_t occurred,
                    v1::ReferralEvent* referral);

  SyntheticOptions options_;
  std::mt19937_64 rng_;
  uint64_t counter_ = 0;
  int64_t now_seconds_ = 0;
  // Trusts (3-character codes) receive referrals; practices are where patients register.
  std::vector<std::string> trusts_;
  std::vector<std::string> practices_;
  // Per publisher, the latest version of its most recent event: what an UPDATE or CANCEL targets.
  std::vector<v1::Event> last_event_;
};

}  // namespace carehub
