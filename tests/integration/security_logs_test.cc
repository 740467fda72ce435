// DESIGN §8: no patient identifier in the hub's logs at info level or above. A full flow over
// CURVE (valid and invalid events, duplicates, a refused publish, identifiable and pseudonymised
// subscriptions, a refused subscription, a reload) with the hub logging at info; then every NHS
// number, postcode, name, address and MRN of the published events is searched for in the log.

#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "carehub/client/subscriber.h"
#include "carehub/core/validation.h"
#include "harness/raw_publisher.h"
#include "harness/workload.h"
#include "security_support.h"

namespace carehub::itest::security {
namespace {

using std::chrono::milliseconds;

// Whole-word, case-sensitive: short names ("Ali", "Ava") must not match inside other words.
bool ContainsWord(const std::string& text, const std::string& word) {
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) {
    auto is_word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
    bool starts = at == 0 || !is_word(text[at - 1]);
    size_t end = at + word.size();
    bool ends = end >= text.size() || !is_word(text[end]);
    if (starts && ends) {
      return true;
    }
  }
  return false;
}

size_t Drain(client::Subscriber& sub, uint64_t head) {
  size_t delivered = 0;
  uint64_t scanned = 0;
  for (int i = 0; i < 100 && scanned < head; ++i) {
    auto batch = sub.Next(milliseconds(200));
    if (!batch.ok()) {
      ADD_FAILURE() << batch.status().ToString();
      return delivered;
    }
    if (batch.value()) {
      delivered += batch.value()->events.size();
      scanned = batch.value()->scanned_to_seq;
      EXPECT_TRUE(sub.Ack(scanned).ok());
    }
  }
  return delivered;
}

TEST(SecurityLogsTest, NoPatientIdentifierInTheLogAtInfo) {
  WorkloadOptions w;
  w.seed = 2026;
  w.id_prefix = "privacy-";
  w.events = 300;
  w.resend_ratio = 0.1;
  w.invalid_ratio = 0.25;
  Workload workload = MakeWorkload(w);
  ASSERT_GT(workload.invalid_count, 20u);

  std::set<std::string> ods;
  for (const auto& e : workload.events) {
    if (IsValidOdsCode(e.envelope().publisher_ods())) {
      ods.insert(e.envelope().publisher_ods());
    }
  }
  Party publisher{"pub-privacy", "publisher", {ods.begin(), ods.end()}, "", {NewKeyPair()}};
  // Allowed fewer codes than it publishes: some events are refused as not authorised.
  Party narrow{"pub-narrow", "publisher", {"RXK"}, "", {NewKeyPair()}};
  Party analytics{"ics", "subscriber", {}, "ics-analytics", {NewKeyPair()}};
  Party hospital{"lth", "subscriber", {}, "leeds-teaching-hospitals", {NewKeyPair()}};
  std::vector<Party> parties = {publisher, narrow, analytics, hospital};
  auto started = CurveHub::Start("sec-logs", parties, "info");
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  CurveHub& hub = *started.value();

  CurveDealer dealer(hub.process().ingest_endpoint(), publisher.keys[0], hub.server_keys().pub);
  size_t accepted = 0;
  size_t rejected = 0;
  for (size_t from = 0; from < workload.events.size(); from += 50) {
    std::vector<v1::Event> batch(
        workload.events.begin() + from,
        workload.events.begin() + std::min(from + 50, workload.events.size()));
    auto result = dealer.Publish(batch, milliseconds(10'000));
    ASSERT_TRUE(result.ok() && result.value().has_value()) << result.status().ToString();
    auto counts = CountResults(*result.value());
    accepted += counts.accepted;
    rejected += counts.rejected + counts.conflict;
  }
  EXPECT_GT(accepted, 0u);
  EXPECT_GE(rejected, workload.invalid_count / 2);

  CurveDealer narrow_dealer(hub.process().ingest_endpoint(), narrow.keys[0], hub.server_keys().pub);
  std::vector<v1::Event> first_batch(workload.events.begin(), workload.events.begin() + 30);
  auto narrow_result = narrow_dealer.Publish(first_batch, milliseconds(10'000));
  ASSERT_TRUE(narrow_result.ok() && narrow_result.value().has_value());

  // An unknown key, and a subscriber opening another's subscription.
  CurveDealer stranger(hub.process().ingest_endpoint(), NewKeyPair(), hub.server_keys().pub);
  (void)stranger.Publish(first_batch, milliseconds(500));

  uint64_t head = 0;
  for (const auto& [key, party] :
       {std::pair{"ics-analytics-feed", analytics}, std::pair{"lth-direct-care", hospital}}) {
    client::SubscriberOptions o;
    o.endpoint = hub.process().subscribe_endpoint();
    o.subscription = key;
    o.start = v1::Subscribe::START_EARLIEST;
    o.curve = hub.ClientKeys(party.keys[0]);
    auto sub = client::Subscriber::Open(o);
    ASSERT_TRUE(sub.ok()) << sub.status().ToString();
    head = sub.value()->subscribed().head_seq();
    EXPECT_GT(Drain(*sub.value(), head), 0u) << key;
  }
  client::SubscriberOptions wrong;
  wrong.endpoint = hub.process().subscribe_endpoint();
  wrong.subscription = "lth-direct-care";
  wrong.curve = hub.ClientKeys(analytics.keys[0]);
  EXPECT_EQ(client::Subscriber::Open(wrong).status().code(), "not_your_subscription");
  ASSERT_TRUE(hub.Reload().ok());

  auto stopped = hub.process().Stop();
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  const std::string log = hub.process().ReadLog();

  // The log is there and says what happened: the search below is not over an empty file.
  ASSERT_NE(log.find("hub started"), std::string::npos) << log;
  ASSERT_NE(log.find("pub-privacy connected"), std::string::npos) << log;
  ASSERT_NE(log.find("unknown_key"), std::string::npos) << log;
  ASSERT_NE(log.find("identities reloaded"), std::string::npos) << log;

  std::set<std::string> identifiers;
  for (const auto& e : workload.events) {
    const auto& p = e.envelope().patient();
    for (const std::string& value : {p.nhs_number(), p.postcode(), p.given_name(), p.family_name(),
                                     p.address(), p.local_mrn()}) {
      if (value.size() >= 3) {
        identifiers.insert(value);
      }
    }
  }
  ASSERT_GT(identifiers.size(), 100u);
  std::vector<std::string> leaked;
  for (const auto& value : identifiers) {
    if (ContainsWord(log, value)) {
      leaked.push_back(value);
    }
  }
  EXPECT_TRUE(leaked.empty()) << leaked.size() << " patient identifiers in the log, e.g. '"
                              << (leaked.empty() ? "" : leaked.front()) << "'";
}

}  // namespace
}  // namespace carehub::itest::security
