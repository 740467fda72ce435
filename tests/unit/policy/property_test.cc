// Property test: random agreements, random opt-out lists and thousands of synthetic events, with
// every decision checked against a plain re-statement of the rules (DESIGN §6) written here, and
// every secondary-use delivery checked for identifiers, field by field and in its serialized bytes.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "carehub/core/event_types.h"
#include "carehub/core/synthetic.h"
#include "carehub/policy/load.h"
#include "carehub/policy/policy_set.h"
#include "policy_test_util.h"

namespace carehub::policy {
namespace {

using Days = std::chrono::days;

const std::vector<std::string> kOdsPool = {"RXK",    "RR8",    "RY6",    "RAE",
                                           "M85001", "M85002", "M85003", "B86001"};
const std::map<std::string, std::vector<std::string>> kGroups = {
    {"pcn-a", {"M85001", "M85002"}}, {"pcn-b", {"M85003", "B86001", "RY6"}}};
const std::vector<std::string> kTypePatterns = {"*",
                                                "activity.*",
                                                "referral.*",
                                                "activity.emergency_admission",
                                                "activity.discharge",
                                                "activity.gp_consultation",
                                                "activity.patient_merge",
                                                "referral.accepted",
                                                "referral.created"};
const std::vector<std::string> kGroupNames = {"pcn-a", "pcn-b"};
const std::vector<std::string> kSubscribers = {"s0", "s1", "s2"};

// One agreement as the test wrote it, with its validity as plain instants.
struct Spec {
  std::string id;
  std::string subscriber;
  bool secondary = false;
  bool pseudonymised = false;
  Clock::TimePoint from;
  Clock::TimePoint last_valid;  // inclusive
  std::vector<std::string> sources;
  std::vector<std::string> types;
};

std::string DateText(Clock::TimePoint t) {
  const auto day = std::chrono::floor<Days>(t);
  const std::chrono::year_month_day ymd{day};
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return buf;
}

std::string TimeText(Clock::TimePoint t) {
  const auto day = std::chrono::floor<Days>(t);
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(t - day).count();
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%sT%02lld:%02lld:%02lldZ", DateText(t).c_str(),
                static_cast<long long>(secs / 3600), static_cast<long long>(secs / 60 % 60),
                static_cast<long long>(secs % 60));
  return buf;
}

struct World {
  std::vector<Spec> specs;
  std::set<std::string> opted_out;
  std::string yaml;
};

World RandomWorld(std::mt19937_64& rng, Clock::TimePoint base,
                  const std::vector<std::string>& population) {
  World world;
  auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
  auto pick = [&](const auto& items) -> const auto& {
    return items[std::uniform_int_distribution<size_t>(0, items.size() - 1)(rng)];
  };
  std::string yaml = "organisation_groups:\n";
  for (const auto& [name, members] : kGroups) {
    yaml += "  " + name + ": [";
    for (size_t i = 0; i < members.size(); ++i) {
      yaml += (i ? ", " : "") + members[i];
    }
    yaml += "]\n";
  }
  yaml += "subscribers:\n";
  for (const std::string& s : kSubscribers) {
    // "-su2": a second secondary-use feed of the subscriber, of the same view as "-su".
    yaml += "  - id: " + s + "\n    subscriptions:\n      - {id: " + s +
            "-dc, purpose: direct_care}\n      - {id: " + s + "-su, purpose: secondary_use}\n" +
            "      - {id: " + s + "-su2, purpose: secondary_use}\n";
  }
  yaml += "agreements:\n";
  const int count = std::uniform_int_distribution<int>(1, 9)(rng);
  std::vector<int> numbers(count);
  for (int i = 0; i < count; ++i) {
    numbers[i] = i;
  }
  std::shuffle(numbers.begin(), numbers.end(), rng);  // file order is not id order
  for (int n : numbers) {
    Spec spec;
    spec.id = "A-" + std::to_string(100 + n);
    spec.subscriber = pick(kSubscribers);
    spec.secondary = chance(0.5);
    spec.pseudonymised = spec.secondary || chance(0.2);
    const auto from_day =
        std::chrono::floor<Days>(base) + Days(std::uniform_int_distribution<int>(-300, 60)(rng));
    const auto until_day = from_day + Days(std::uniform_int_distribution<int>(0, 400)(rng));
    std::string from_text;
    std::string until_text;
    if (chance(0.5)) {
      spec.from = from_day;
      from_text = DateText(from_day);
    } else {
      spec.from = from_day + std::chrono::hours(9) + std::chrono::minutes(30);
      from_text = TimeText(spec.from);
    }
    if (chance(0.5)) {
      spec.last_valid = until_day + Days(1) - Clock::TimePoint::duration(1);
      until_text = DateText(until_day);
    } else {
      spec.last_valid = until_day + std::chrono::hours(17);
      until_text = TimeText(spec.last_valid);
    }
    if (spec.last_valid < spec.from) {
      spec.last_valid = until_day + Days(1) - Clock::TimePoint::duration(1);
      until_text = DateText(until_day);
    }
    if (chance(0.15)) {
      spec.sources.push_back("*");
    }
    const int source_count = std::uniform_int_distribution<int>(1, 3)(rng);
    for (int i = 0; i < source_count; ++i) {
      spec.sources.push_back(chance(0.3) ? "group:" + pick(kGroupNames) : pick(kOdsPool));
    }
    const int type_count = std::uniform_int_distribution<int>(1, 3)(rng);
    for (int i = 0; i < type_count; ++i) {
      spec.types.push_back(pick(kTypePatterns));
    }
    yaml += "  - id: " + spec.id + "\n    subscriber: " + spec.subscriber +
            "\n    purpose: " + (spec.secondary ? "secondary_use" : "direct_care") +
            "\n    legal_basis: \"test basis\"\n    valid_from: " + from_text +
            "\n    valid_until: " + until_text + "\n    sources: [";
    for (size_t i = 0; i < spec.sources.size(); ++i) {
      yaml += (i ? ", \"" : "\"") + spec.sources[i] + "\"";
    }
    yaml += "]\n    event_types: [";
    for (size_t i = 0; i < spec.types.size(); ++i) {
      yaml += (i ? ", \"" : "\"") + spec.types[i] + "\"";
    }
    yaml += std::string("]\n    patient_fields: ") +
            (spec.pseudonymised ? "pseudonymised" : "identifiable") + "\n";
    world.specs.push_back(spec);
  }
  yaml += "pseudonymisation:\n  secret_file: pseudonym.key\nopt_out:\n  file: opt-out.txt\n";
  world.yaml = yaml;
  const double opt_out_share = std::uniform_real_distribution<double>(0.0, 0.3)(rng);
  for (const std::string& nhs : population) {
    if (chance(opt_out_share)) {
      world.opted_out.insert(nhs);
    }
  }
  return world;
}

// The rule, stated plainly.
bool SourceCovered(const Spec& spec, const std::string& publisher, const std::string& site) {
  for (const std::string& source : spec.sources) {
    if (source == "*" || source == publisher || (!site.empty() && source == site)) {
      return true;
    }
    if (source.rfind("group:", 0) == 0) {
      for (const std::string& member : kGroups.at(source.substr(6))) {
        if (member == publisher || member == site) {
          return true;
        }
      }
    }
  }
  return false;
}

bool TypeCovered(const Spec& spec, const std::string& type) {
  return std::any_of(spec.types.begin(), spec.types.end(),
                     [&](const std::string& p) { return EventTypeMatches(p, type); });
}

struct Expected {
  Verdict verdict = Verdict::kNotCovered;
  std::string agreement;
  std::string reason;
};

Expected ExpectedDecision(const World& world, const std::string& subscriber, bool secondary,
                          const v1::Event& event, Clock::TimePoint now) {
  Expected expected;
  const std::string type = EventTypeName(event);
  bool covered = false;
  std::optional<std::string> best;
  for (const Spec& spec : world.specs) {
    if (spec.subscriber != subscriber || spec.secondary != secondary) {
      continue;
    }
    if (!TypeCovered(spec, type) ||
        !SourceCovered(spec, event.envelope().publisher_ods(), event.envelope().site_ods())) {
      continue;
    }
    covered = true;
    if (now >= spec.from && now <= spec.last_valid && (!best || spec.id < *best)) {
      best = spec.id;
    }
  }
  if (!best) {
    if (covered) {
      expected.verdict = Verdict::kWithheld;
      expected.reason = std::string(kWithheldNoValidAgreement);
    }
    return expected;
  }
  expected.agreement = *best;
  const bool opted_out =
      world.opted_out.count(event.envelope().patient().nhs_number()) != 0 ||
      (event.has_activity() && event.activity().has_merged_patient() &&
       world.opted_out.count(event.activity().merged_patient().nhs_number()) != 0);
  if (secondary && opted_out) {
    expected.verdict = Verdict::kWithheld;
    expected.reason = std::string(kWithheldOptOut);
  } else {
    expected.verdict = Verdict::kDeliver;
  }
  return expected;
}

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kDeliver:
      return "deliver";
    case Verdict::kNotCovered:
      return "not_covered";
    case Verdict::kWithheld:
      return "withheld";
  }
  return "?";
}

TEST(PolicyPropertyTest, DecisionsAndRedactionMatchThePlainRules) {
  const Clock::TimePoint base = testing::At("2026-06-15T12:00:00Z");
  constexpr uint32_t kPopulation = 300;
  std::vector<std::string> population;
  for (uint32_t i = 0; i < kPopulation; ++i) {
    population.push_back(SyntheticNhsNumber(i));
  }
  std::map<std::string, int> outcomes;

  for (uint64_t seed : {1u, 2u, 3u, 4u, 5u, 6u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    const World world = RandomWorld(rng, base, population);
    testing::TempDir dir;
    testing::WriteStandardFiles(dir, {world.opted_out.begin(), world.opted_out.end()});
    auto policy = testing::MustLoad(world.yaml, dir);
    ASSERT_NE(policy, nullptr) << world.yaml;
    ASSERT_EQ(policy->opt_out_count(), world.opted_out.size());
    // Only subscriptions of one subscriber and purpose share a view (the hub shares their
    // batches): a property of the policy, checked once per world.
    for (const std::string& subscriber : kSubscribers) {
      for (const char* own : {"-dc", "-su", "-su2"}) {
        const SubscriptionRef* sub = policy->FindSubscription(subscriber + own);
        ASSERT_NE(sub, nullptr);
        const bool secondary = std::string(own) != "-dc";
        for (const std::string& other_subscriber : kSubscribers) {
          for (const char* suffix : {"-dc", "-su", "-su2"}) {
            const SubscriptionRef* other = policy->FindSubscription(other_subscriber + suffix);
            ASSERT_NE(other, nullptr);
            const bool same_view =
                other_subscriber == subscriber &&
                (secondary ? std::string(suffix) != "-dc" : std::string(suffix) == "-dc");
            ASSERT_EQ(policy->ViewOf(*other) == policy->ViewOf(*sub), same_view)
                << subscriber << own << " against " << other_subscriber << suffix;
          }
        }
      }
    }

    SyntheticOptions options;
    options.seed = seed;
    options.population = kPopulation;
    options.publishers = {"RXK",    "RR8",    "RY6", "M85001", "M85002",
                          "M85003", "B86001", "RAE", "ZZZ"};
    options.now = base;
    SyntheticGenerator generator(options);

    // pseudonyms[agreement][nhs] and, to prove unlinkability, nhs -> set of pseudonyms.
    std::map<std::string, std::map<std::string, std::string>> pseudonyms;
    const std::vector<Clock::TimePoint> nows = {base, base - Days(200) + std::chrono::hours(3),
                                                base + Days(90) - std::chrono::hours(5)};

    for (int n = 0; n < 2500; ++n) {
      v1::Event event = generator.Next();
      v1::Envelope* env = event.mutable_envelope();
      // Sites other than the publisher's own exercise the site_ods rule.
      if (std::uniform_int_distribution<int>(0, 4)(rng) == 0) {
        env->set_site_ods(kOdsPool[std::uniform_int_distribution<size_t>(0, 7)(rng)]);
      }
      if (event.has_activity() && std::uniform_int_distribution<int>(0, 9)(rng) == 0) {
        event.mutable_activity()->set_kind(v1::ACTIVITY_KIND_PATIENT_MERGE);
      }
      // Distinctive identifiers, so a leak shows up in the serialized bytes.
      const std::string tag = std::to_string(seed) + "x" + std::to_string(n);
      v1::Patient* patient = env->mutable_patient();
      patient->set_given_name("GIVEN" + tag);
      patient->set_family_name("FAMILY" + tag);
      patient->set_address("ADDRESS" + tag);
      patient->set_local_mrn("MRN" + tag);
      patient->set_birth_date("1961-03-" + std::to_string(10 + n % 18));
      if (event.has_activity()) {
        event.mutable_activity()->set_note("NOTE" + tag);
        if (event.activity().kind() == v1::ACTIVITY_KIND_PATIENT_MERGE) {
          v1::Patient* merged = event.mutable_activity()->mutable_merged_patient();
          merged->set_nhs_number(population[(n * 7 + 3) % kPopulation]);
          merged->set_given_name("MGIVEN" + tag);
          merged->set_family_name("MFAMILY" + tag);
          merged->set_address("MADDRESS" + tag);
          merged->set_local_mrn("MMRN" + tag);
          merged->set_birth_date("1962-04-05");
          merged->set_postcode("WF1 2AB");
        }
      } else if (event.has_referral()) {
        event.mutable_referral()->set_note("NOTE" + tag);
      }
      const std::string type = EventTypeName(event);
      const std::string full_postcode = patient->postcode();
      std::string compact_postcode = full_postcode;
      compact_postcode.erase(std::remove(compact_postcode.begin(), compact_postcode.end(), ' '),
                             compact_postcode.end());

      for (const std::string& subscriber : kSubscribers) {
        for (bool secondary : {false, true}) {
          const std::string sub_id = subscriber + (secondary ? "-su" : "-dc");
          const SubscriptionRef* sub = policy->FindSubscription(sub_id);
          ASSERT_NE(sub, nullptr);
          // Subscriptions of one view (the hub shares their batches) decide and redact alike.
          const SubscriptionRef* twin = policy->FindSubscription(subscriber + "-su2");
          ASSERT_NE(twin, nullptr);
          bool any_covering = false;
          for (Clock::TimePoint now : nows) {
            const Decision decision = policy->Decide(*sub, event, now);
            if (secondary) {
              const Decision twin_decision = policy->Decide(*twin, event, now);
              ASSERT_EQ(twin_decision.verdict, decision.verdict);
              ASSERT_EQ(twin_decision.agreement, decision.agreement);
              ASSERT_EQ(twin_decision.withheld_reason, decision.withheld_reason);
            }
            const Expected expected = ExpectedDecision(world, subscriber, secondary, event, now);
            ASSERT_EQ(VerdictName(decision.verdict), std::string(VerdictName(expected.verdict)))
                << sub_id << " " << type << " from " << env->publisher_ods() << "/"
                << env->site_ods() << "\n"
                << world.yaml;
            ASSERT_EQ(std::string(decision.withheld_reason), expected.reason);
            if (!expected.agreement.empty()) {
              ASSERT_NE(decision.agreement, nullptr);
              ASSERT_EQ(decision.agreement->id, expected.agreement);
            }
            any_covering = any_covering || decision.verdict != Verdict::kNotCovered;
            outcomes[std::string(VerdictName(decision.verdict)) + ":" +
                     std::string(decision.withheld_reason)]++;
            if (decision.verdict != Verdict::kDeliver) {
              continue;
            }
            // Independent of the verdict's agreement: some plainly-written spec allows it.
            ASSERT_TRUE(std::any_of(world.specs.begin(), world.specs.end(), [&](const Spec& s) {
              return s.subscriber == subscriber && s.secondary == secondary && now >= s.from &&
                     now <= s.last_valid && TypeCovered(s, type) &&
                     SourceCovered(s, env->publisher_ods(), env->site_ods());
            }));
            if (!secondary) {
              continue;
            }
            ASSERT_EQ(world.opted_out.count(patient->nhs_number()), 0u);
            v1::Event redacted = event;
            policy->Redact(*decision.agreement, &redacted);
            const v1::Patient& p = redacted.envelope().patient();
            ASSERT_TRUE(p.nhs_number().empty() && p.given_name().empty() &&
                        p.family_name().empty() && p.address().empty() && p.local_mrn().empty() &&
                        p.mrn_assigning_ods().empty());
            ASSERT_EQ(p.birth_date(), "1961-03");
            ASSERT_LE(p.postcode().size(), 4u);
            ASSERT_EQ(p.pseudonym().size(), 64u);
            const std::string bytes = redacted.SerializeAsString();
            for (const std::string& forbidden :
                 {patient->nhs_number(), patient->given_name(), patient->family_name(),
                  patient->address(), patient->local_mrn(), patient->birth_date(), full_postcode,
                  compact_postcode, "NOTE" + tag, "MGIVEN" + tag, "MMRN" + tag,
                  std::string("1962-04-05"), std::string("WF1 2AB")}) {
              if (!forbidden.empty()) {
                ASSERT_EQ(bytes.find(forbidden), std::string::npos) << forbidden;
              }
            }
            if (event.has_activity() && event.activity().has_merged_patient()) {
              const std::string& merged_nhs = event.activity().merged_patient().nhs_number();
              ASSERT_EQ(bytes.find(merged_nhs), std::string::npos);
              ASSERT_EQ(world.opted_out.count(merged_nhs), 0u);
              auto& by_nhs = pseudonyms[decision.agreement->id];
              auto [it, inserted] =
                  by_nhs.emplace(merged_nhs, redacted.activity().merged_patient().pseudonym());
              ASSERT_EQ(it->second, redacted.activity().merged_patient().pseudonym());
            }
            auto& by_nhs = pseudonyms[decision.agreement->id];
            auto [it, inserted] = by_nhs.emplace(patient->nhs_number(), p.pseudonym());
            // The same agreement always gives the same pseudonym for one patient.
            ASSERT_EQ(it->second, p.pseudonym());
          }
          // The routing hint, given the site, is exact: true iff some agreement covers it.
          ASSERT_EQ(policy->MayReceive(*sub, env->publisher_ods(), type, env->site_ods()),
                    std::any_of(world.specs.begin(), world.specs.end(),
                                [&](const Spec& s) {
                                  return s.subscriber == subscriber && s.secondary == secondary &&
                                         TypeCovered(s, type) &&
                                         SourceCovered(s, env->publisher_ods(), env->site_ods());
                                }))
              << sub_id << " " << type;
          if (any_covering) {
            ASSERT_TRUE(policy->MayReceive(*sub, env->publisher_ods(), type, env->site_ods()));
          }
        }
      }
    }
    // Pseudonyms never repeat: not across patients of one agreement (no collisions), and not across
    // agreements for one patient (two agreements cannot link their data).
    std::map<std::string, std::string> owner;
    for (const auto& [agreement, by_nhs] : pseudonyms) {
      for (const auto& [nhs, pseudonym] : by_nhs) {
        auto [it, inserted] = owner.emplace(pseudonym, agreement + "/" + nhs);
        ASSERT_TRUE(inserted) << pseudonym << " shared by " << it->second << " and " << agreement
                              << "/" << nhs;
      }
    }
  }
  // The run must have exercised every outcome, or it proves little.
  EXPECT_GT(outcomes["deliver:"], 1000);
  EXPECT_GT(outcomes["not_covered:"], 1000);
  EXPECT_GT(outcomes["withheld:national_data_opt_out"], 50);
  EXPECT_GT(outcomes["withheld:no_valid_agreement"], 50);
}

TEST(PolicyPropertyTest, TwoAgreementsSeeOnePatientUnderDifferentPseudonyms) {
  testing::TempDir dir;
  testing::WriteStandardFiles(dir);
  std::string text = testing::BasePolicyYaml();
  text.insert(text.find("pseudonymisation:"), R"(  - id: DSA-SEC-2
    subscriber: ics
    purpose: secondary_use
    legal_basis: "another study"
    valid_from: 2026-01-01
    valid_until: 2026-12-31
    sources: ["*"]
    event_types: ["*"]
    patient_fields: pseudonymised
)");
  auto policy = testing::MustLoad(text, dir);
  ASSERT_NE(policy, nullptr);
  const Agreement* first = nullptr;
  const Agreement* second = nullptr;
  for (const Agreement& a : policy->agreements()) {
    if (a.id == "DSA-SEC-1") {
      first = &a;
    } else if (a.id == "DSA-SEC-2") {
      second = &a;
    }
  }
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  for (uint32_t i = 0; i < 500; ++i) {
    v1::Event event;
    event.mutable_envelope()->mutable_patient()->set_nhs_number(SyntheticNhsNumber(i));
    v1::Event a = event;
    v1::Event a_again = event;
    v1::Event b = event;
    policy->Redact(*first, &a);
    policy->Redact(*first, &a_again);
    policy->Redact(*second, &b);
    ASSERT_EQ(a.envelope().patient().pseudonym(), a_again.envelope().patient().pseudonym());
    ASSERT_NE(a.envelope().patient().pseudonym(), b.envelope().patient().pseudonym());
  }
}

}  // namespace
}  // namespace carehub::policy
