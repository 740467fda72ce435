// Data-sharing agreements (policy LoadPolicyFromString): arbitrary YAML through the loader that a
// reload (SIGHUP or admin API) runs, resolved against a directory holding the repo's pseudonym key
// and opt-out list. A policy that loads is then used: every subscription is decided against
// synthetic events and what it would deliver is redacted.
//
// Invariants: loading never throws or crashes; a refused file says why; a pseudonymised delivery
// carries no NHS number, MRN, name or address.

#include <filesystem>

#include "carehub/core/synthetic.h"
#include "carehub/policy/load.h"
#include "fuzz_support.h"

namespace {

std::vector<carehub::v1::Event>* events = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  carehub::fuzz::QuietLoggers();
  carehub::SyntheticOptions options;
  options.seed = 9;
  options.now = carehub::fuzz::FixedClock().Now();
  carehub::SyntheticGenerator generator(options);
  events = new std::vector<carehub::v1::Event>();
  for (int i = 0; i < 16; ++i) {
    events->push_back(generator.Next());
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using carehub::policy::FieldLevel;
  std::string_view yaml(reinterpret_cast<const char*>(data), size);
  const std::filesystem::path config_dir = std::filesystem::path(CAREHUB_SOURCE_DIR) / "config";
  auto loaded = carehub::policy::LoadPolicyFromString(yaml, config_dir);
  if (!loaded.ok()) {
    CAREHUB_FUZZ_CHECK(!loaded.status().code().empty() && !loaded.status().message().empty(),
                       "refused without a reason");
    return 0;
  }
  const carehub::policy::PolicySet& policy = *loaded.value();
  (void)policy.Describe();
  static carehub::fuzz::FixedClock clock;
  for (const auto& subscriber : policy.subscribers()) {
    for (const auto& subscription_id : subscriber.subscriptions) {
      const carehub::policy::SubscriptionRef* ref = policy.FindSubscription(subscription_id);
      CAREHUB_FUZZ_CHECK(ref != nullptr, "a listed subscription is found");
      (void)policy.AgreementsFor(*ref);
      (void)policy.ValidityNow(*ref, clock.Now());
      for (const auto& event : *events) {
        (void)policy.MayReceive(*ref, event.envelope().publisher_ods(), "activity.ae_attendance",
                                event.envelope().site_ods());
        carehub::policy::Decision decision = policy.Decide(*ref, event, clock.Now());
        if (decision.verdict != carehub::policy::Verdict::kDeliver) {
          continue;
        }
        CAREHUB_FUZZ_CHECK(decision.agreement != nullptr, "delivery without an agreement");
        carehub::v1::Event out = event;
        policy.Redact(*decision.agreement, &out);
        if (decision.agreement->patient_fields == FieldLevel::kPseudonymised) {
          const auto& p = out.envelope().patient();
          CAREHUB_FUZZ_CHECK(p.nhs_number().empty() && p.local_mrn().empty() &&
                                 p.given_name().empty() && p.family_name().empty() &&
                                 p.address().empty(),
                             "identifiers left in a pseudonymised delivery");
        }
      }
    }
  }
  return 0;
}
