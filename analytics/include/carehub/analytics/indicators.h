#pragma once
// The ICS population-health indicators carehub-analytics reports (docs/demo.md), computed from
// "facts": the few fields of each event an indicator needs, with the patient reduced to a linking
// key. carehub-analytics builds facts from the pseudonymised feed; the demo generator builds them
// from its own records to produce the ground truth, so both sides go through the same definitions
// and a difference can only come from what the feed carried.
//
// Pure functions over values; thread-safe.

#include <climits>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "carehub/v1/event.pb.h"

namespace carehub::analytics {

struct Fact {
  // Links the events of one person: the agreement's pseudonym in the feed. Never shown.
  std::string patient;
  // "activity.<kind>" or "referral.<status>".
  std::string type;
  int64_t occurred = 0;  // Unix seconds, UTC
  std::string publisher_ods;
  std::string site_ods;
  std::string practice;  // registered GP practice ODS
  std::string birth_ym;  // "YYYY-MM"
  // Referrals only.
  std::string referral_id;
  std::string requester_ods;
  std::string performer_ods;
  int64_t authored = 0;
  int64_t appointment = 0;
  // Data-quality measures (carehub/core/data_quality.h) of the event; `dq_known` false for facts
  // stored before they existed, which the data-quality table skips.
  bool dq_known = false;
  bool verified_nhs_number = false;
  bool valid_postcode = false;
  bool valid_practice = false;
  bool valid_codes = false;
  // received_at - occurred_at, seconds; kUnknownDelay when the event did not carry both.
  static constexpr int64_t kUnknownDelay = INT64_MIN;
  int64_t delay_seconds = kUnknownDelay;
};

// The fact an event contributes, or nothing for events no indicator uses (merges, updates of
// patient details ...). CANCEL events give nothing: the caller removes what they supersede.
std::optional<Fact> FactFromEvent(const v1::Event& event);

// One line, tab-separated (no field holds a tab), for the state store.
std::string EncodeFact(const Fact& fact);
std::optional<Fact> DecodeFact(const std::string& text);

// Registered patients per practice (the published "patients registered at a GP practice"
// aggregate): the denominator of per-1,000 rates.
using ListSizes = std::map<std::string, int64_t>;

// CSV with a header and columns practice_ods,pcn,registered_patients. Error code "bad_list_sizes".
struct PracticeList {
  ListSizes sizes;
  std::map<std::string, std::string> pcn_of;
};
std::optional<PracticeList> ReadPracticeList(const std::string& path, std::string* error);

// Age bands for A&E attendances, in display order.
const std::vector<std::string>& AgeBands();
// Bands of days from referral to first appointment, in display order.
const std::vector<std::string>& WaitBands();

// Everything the report shows, as counts (rates are derived at display time from these and the
// list sizes, so comparing two Indicators compares integers).
struct Indicators {
  // practice -> "YYYY-MM" -> emergency admissions.
  std::map<std::string, std::map<std::string, int64_t>> emergency_admissions;
  // age band -> A&E attendances.
  std::map<std::string, int64_t> ae_by_age_band;
  // "REQUESTER>PERFORMER" -> distinct referrals.
  std::map<std::string, int64_t> referral_flows;
  // performer -> referrals accepted / rejected (distinct referrals).
  std::map<std::string, int64_t> referrals_accepted;
  std::map<std::string, int64_t> referrals_rejected;
  // performer -> wait band -> referrals seen; and the median wait in days.
  std::map<std::string, std::map<std::string, int64_t>> wait_days;
  std::map<std::string, int64_t> median_wait_days;
  // setting -> appointments attended / not attended.
  std::map<std::string, int64_t> attended;
  std::map<std::string, int64_t> did_not_attend;
  // practice -> discharges, and those followed by a GP or community contact within 7 days.
  std::map<std::string, int64_t> discharges;
  std::map<std::string, int64_t> discharges_followed_up;
  // publisher -> events with each data-quality measure met, out of `events` (issue 21).
  struct Quality {
    int64_t events = 0;
    int64_t verified_nhs_number = 0;
    int64_t valid_postcode = 0;
    int64_t valid_practice = 0;
    int64_t valid_codes = 0;
  };
  std::map<std::string, Quality> data_quality;
  // publisher -> median minutes from occurred_at to the hub's received_at. Depends on when the
  // feed ran, so it is reported beside, not inside, ToJson (which a ground truth must reproduce).
  std::map<std::string, int64_t> median_delay_minutes;
  // Facts the indicators were computed from.
  int64_t facts = 0;

  nlohmann::json ToJson() const;
};

Indicators ComputeIndicators(const std::vector<Fact>& facts);

// The DNA setting of a site: "GP practices" for practice-shaped codes (letter + five digits),
// otherwise the site's ODS code.
std::string SettingOf(const std::string& site_ods);

}  // namespace carehub::analytics
