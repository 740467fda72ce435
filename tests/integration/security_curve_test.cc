// DESIGN §7 over real CURVE connections to the real `carehub` binary: who gets in, who may publish
// under which ODS code, who may open which subscription, and reloading identities.

#include <gtest/gtest.h>
#include <signal.h>
#include <zmq.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "carehub/client/subscriber.h"
#include "carehub/core/validation.h"
#include "harness/raw_publisher.h"
#include "harness/workload.h"
#include "security_support.h"

namespace carehub::itest::security {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kAnswerTimeout{10'000};
// What a client observes when the hub's ZAP handler denies its key: an ERROR command with ZAP
// status 400 (CurveDealer::WaitForHandshake), not mere silence.
constexpr const char* kKeyRefused = "refused:400";

std::vector<v1::Event> ValidEvents(uint64_t seed, size_t n, const std::string& prefix) {
  WorkloadOptions o;
  o.seed = seed;
  o.id_prefix = prefix;
  o.events = n;
  return MakeWorkload(o).events;
}

std::vector<std::string> OdsCodesOf(const std::vector<v1::Event>& events) {
  std::set<std::string> codes;
  for (const auto& e : events) {
    if (IsValidOdsCode(e.envelope().publisher_ods())) {
      codes.insert(e.envelope().publisher_ods());
    }
  }
  return {codes.begin(), codes.end()};
}

bool WaitForMetric(const CurveHub& hub, const std::string& name, const std::string& labels,
                   double at_least) {
  for (int i = 0; i < 200; ++i) {
    if (hub.Metric(name, labels) >= at_least) {
      return true;
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  return false;
}

class SecurityCurveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    events_ = ValidEvents(7, 40, "sec-");
    publisher_ = Party{"pub-a", "publisher", OdsCodesOf(events_), "", {NewKeyPair()}};
    analytics_ = Party{"ics", "subscriber", {}, "ics-analytics", {NewKeyPair()}};
    hospital_ = Party{"lth", "subscriber", {}, "leeds-teaching-hospitals", {NewKeyPair()}};
    operator_ = Party{"ops-alice", "operator", {}, "", {NewKeyPair()}};
    auto hub = CurveHub::Start("sec-curve", Parties());
    ASSERT_TRUE(hub.ok()) << hub.status().ToString();
    hub_ = std::move(hub).value();
  }

  std::vector<Party> Parties() const { return {publisher_, analytics_, hospital_, operator_}; }

  // Reads `sub` until it has examined the log up to `head`, at most `rounds` waits of 200 ms,
  // acknowledging each batch when `ack`. Counts what was delivered in *delivered; returns the
  // hub_seq examined to (a failed read is a test failure and ends the loop).
  uint64_t DrainTo(client::Subscriber& sub, uint64_t head, int rounds, bool ack,
                   size_t* delivered) {
    uint64_t scanned = 0;
    for (int i = 0; i < rounds && scanned < head; ++i) {
      auto batch = sub.Next(milliseconds(200));
      if (!batch.ok()) {
        ADD_FAILURE() << batch.status().ToString();
        break;
      }
      if (batch.value()) {
        *delivered += batch.value()->events.size();
        scanned = batch.value()->scanned_to_seq;
        if (ack && !sub.Ack(scanned).ok()) {
          ADD_FAILURE() << "ack of " << scanned << " failed";
          break;
        }
      }
    }
    return scanned;
  }

  std::unique_ptr<CurveDealer> Dealer(const std::optional<KeyPair>& keys) {
    return std::make_unique<CurveDealer>(hub_->process().ingest_endpoint(), keys,
                                         hub_->server_keys().pub);
  }

  Result<std::unique_ptr<client::Subscriber>> Subscribe(const KeyPair& keys,
                                                        const std::string& subscription) {
    client::SubscriberOptions o;
    o.endpoint = hub_->process().subscribe_endpoint();
    o.subscription = subscription;
    o.start = v1::Subscribe::START_EARLIEST;
    o.curve = hub_->ClientKeys(keys);
    // Generous for a real handshake on loopback; also what a refused client waits in vain.
    o.connect_timeout = milliseconds(2000);
    return client::Subscriber::Open(o);
  }

  std::vector<v1::Event> events_;
  Party publisher_;
  Party analytics_;
  Party hospital_;
  Party operator_;
  std::unique_ptr<CurveHub> hub_;
};

TEST_F(SecurityCurveTest, KnownPublisherPublishesUnknownKeyIsRefusedAndCounted) {
  auto dealer = Dealer(publisher_.keys[0]);
  auto result = dealer->Publish(events_, kAnswerTimeout);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_TRUE(result.value().has_value()) << "a known publisher got no answer";
  EXPECT_EQ(CountResults(*result.value()).accepted, events_.size());
  // The monitor tells a let-in handshake from a refused one.
  EXPECT_EQ(dealer->WaitForHandshake(kAnswerTimeout), "succeeded");

  auto stranger = Dealer(NewKeyPair());
  EXPECT_EQ(stranger->WaitForHandshake(kAnswerTimeout), kKeyRefused)
      << "an unknown key was not refused";
  EXPECT_TRUE(WaitForMetric(*hub_, "carehub_auth_refused_total", "reason=\"unknown_key\"", 1));
  EXPECT_GE(hub_->Metric("carehub_auth_accepted_total", "domain=\"carehub-ingest\""), 1);
  // Only the known publisher's events were received at all.
  EXPECT_EQ(hub_->Metric("carehub_events_received_total"), static_cast<double>(events_.size()));

  // The refusal is logged with a fingerprint, never the key itself.
  hub_->process().Signal(SIGTERM);
  ASSERT_TRUE(hub_->process().Wait(std::chrono::seconds(20)).has_value());
  std::string log = hub_->process().ReadLog();
  EXPECT_NE(log.find("unknown_key (key sha256:"), std::string::npos) << log;
  for (const auto& party : Parties()) {
    EXPECT_EQ(log.find(party.keys[0].pub), std::string::npos) << "public key in the log";
    EXPECT_EQ(log.find(party.keys[0].sec), std::string::npos) << "secret key in the log";
  }
  EXPECT_EQ(log.find(hub_->server_keys().sec), std::string::npos) << "server secret in the log";
}

TEST_F(SecurityCurveTest, PublisherClaimingAnotherOdsCodeIsRejectedAndQuarantined) {
  std::vector<v1::Event> batch = ValidEvents(9, 3, "claim-");
  const std::string foreign = "RAE";  // Bradford Teaching Hospitals: not this publisher's
  ASSERT_TRUE(IsValidOdsCode(foreign));
  ASSERT_EQ(std::count(publisher_.ods.begin(), publisher_.ods.end(), foreign), 0);
  batch[1].mutable_envelope()->set_publisher_ods(foreign);

  auto dealer = Dealer(publisher_.keys[0]);
  auto result = dealer->Publish(batch, kAnswerTimeout);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_TRUE(result.value().has_value());
  const auto& results = result.value()->results();
  ASSERT_EQ(results.size(), 3);
  EXPECT_EQ(results[0].status(), v1::EventResult::ACCEPTED);
  EXPECT_EQ(results[1].status(), v1::EventResult::REJECTED);
  EXPECT_EQ(results[1].reason(), "publisher_not_authorised");
  EXPECT_EQ(results[2].status(), v1::EventResult::ACCEPTED);

  std::string quarantine = hub_->AdminGet("/api/v1/quarantine");
  auto listing = nlohmann::json::parse(quarantine, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(listing.is_object() && listing["items"].is_array()) << quarantine;
  size_t found = 0;
  for (const auto& item : listing["items"]) {
    if (item.value("reason", "") == "publisher_not_authorised") {
      EXPECT_EQ(item.value("sender", ""), "pub-a") << item.dump();
      ++found;
    }
  }
  EXPECT_EQ(found, 1u) << quarantine;
  EXPECT_GE(hub_->Metric("carehub_events_rejected_total", "publisher_not_authorised"), 1);
}

TEST_F(SecurityCurveTest, SubscriberMayOpenOnlyItsOwnSubscriptions) {
  auto dealer = Dealer(publisher_.keys[0]);
  auto published = dealer->Publish(events_, kAnswerTimeout);
  ASSERT_TRUE(published.ok() && published.value().has_value());

  auto other = Subscribe(analytics_.keys[0], "lth-direct-care");
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), "not_your_subscription") << other.status().ToString();

  auto own = Subscribe(analytics_.keys[0], "ics-analytics-feed");
  ASSERT_TRUE(own.ok()) << own.status().ToString();
  // Until the feed has examined the whole log (opted-out patients are withheld from this one).
  const uint64_t head = own.value()->subscribed().head_seq();
  ASSERT_GE(head, events_.size());
  size_t delivered = 0;
  const uint64_t scanned = DrainTo(*own.value(), head, 50, /*ack=*/false, &delivered);
  ASSERT_FALSE(HasFailure());
  EXPECT_GE(scanned, head);
  EXPECT_GT(delivered, 0u);

  // A publisher's key does not open the subscribe endpoint at all, nor an operator's.
  for (const auto* party : {&publisher_, &operator_}) {
    auto wrong = Subscribe(party->keys[0], "ics-analytics-feed");
    ASSERT_FALSE(wrong.ok()) << party->id;
    EXPECT_EQ(wrong.status().code(), "hub_unreachable") << wrong.status().ToString();
  }
  EXPECT_TRUE(WaitForMetric(*hub_, "carehub_auth_refused_total", "reason=\"wrong_endpoint\"", 2));
  // And a subscriber's key does not open the ingest endpoint.
  auto sub_as_pub = Dealer(analytics_.keys[0]);
  EXPECT_EQ(sub_as_pub->WaitForHandshake(kAnswerTimeout), kKeyRefused);
}

TEST_F(SecurityCurveTest, RightPublicKeyWithWrongSecretCannotConnect) {
  const double accepted_before = hub_->Metric("carehub_auth_accepted_total");
  KeyPair forged{publisher_.keys[0].pub, NewKeyPair().sec};
  auto dealer = Dealer(forged);
  // The hub cannot verify the client's vouch and closes the connection mid-handshake.
  const std::string handshake = dealer->WaitForHandshake(kAnswerTimeout);
  EXPECT_TRUE(handshake == "failed" || handshake.rfind("protocol:", 0) == 0)
      << "a forged key pair's handshake: " << handshake;
  EXPECT_EQ(hub_->Metric("carehub_auth_accepted_total"), accepted_before);
  EXPECT_EQ(hub_->Metric("carehub_events_received_total"), 0);

  // The same for a subscriber: the handshake fails, the hub never hears the Subscribe.
  KeyPair forged_sub{analytics_.keys[0].pub, NewKeyPair().sec};
  auto sub = Subscribe(forged_sub, "ics-analytics-feed");
  ASSERT_FALSE(sub.ok());
  EXPECT_EQ(sub.status().code(), "hub_unreachable");
}

TEST_F(SecurityCurveTest, CurveHubNeverAcceptsAPlainConnection) {
  // ZeroMQ refuses the NULL mechanism against a CURVE endpoint during the greeting: the hub closes
  // the connection (the client may also name the mismatch itself).
  auto plain = Dealer(std::nullopt);
  const std::string handshake = plain->WaitForHandshake(kAnswerTimeout);
  EXPECT_TRUE(handshake == "failed" ||
              handshake == "protocol:" + std::to_string(ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH))
      << "a plain client's handshake with a CURVE hub: " << handshake;

  client::SubscriberOptions o;
  o.endpoint = hub_->process().subscribe_endpoint();
  o.subscription = "ics-analytics-feed";
  o.connect_timeout = milliseconds(1500);
  auto sub = client::Subscriber::Open(o);
  ASSERT_FALSE(sub.ok());
  EXPECT_EQ(sub.status().code(), "hub_unreachable");

  EXPECT_EQ(hub_->Metric("carehub_events_received_total"), 0);
  EXPECT_EQ(hub_->Metric("carehub_auth_accepted_total"), 0);
}

TEST_F(SecurityCurveTest, IdentityChangesTakeEffectOnReload) {
  // A new key for the publisher, not yet in the identities: refused.
  KeyPair rotated = NewKeyPair();
  {
    auto early = Dealer(rotated);
    EXPECT_EQ(early->WaitForHandshake(kAnswerTimeout), kKeyRefused);
  }
  auto old_connection = Dealer(publisher_.keys[0]);
  auto first = old_connection->Publish(ValidEvents(12, 2, "first-"), kAnswerTimeout);
  ASSERT_TRUE(first.ok() && first.value().has_value());

  // Rotation step 1: add the new key beside the old one, reload. The new key gets in.
  Party two_keys = publisher_;
  two_keys.keys.push_back(rotated);
  ASSERT_TRUE(hub_->WriteIdentities({two_keys, analytics_, hospital_, operator_}).ok());
  ASSERT_TRUE(hub_->Reload().ok());
  auto fresh = Dealer(rotated);
  auto second = fresh->Publish(ValidEvents(13, 4, "second-"), kAnswerTimeout);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  ASSERT_TRUE(second.value().has_value()) << "the added key was not let in after reload";
  EXPECT_EQ(CountResults(*second.value()).accepted, 4u);

  // An invalid file is refused; the set in force stays (the new key still gets in).
  ASSERT_TRUE(hub_->WriteIdentitiesText("identities:\n  broken: {kind: root}\n").ok());
  ASSERT_TRUE(hub_->Reload(/*expect_applied=*/false).ok());
  {
    auto again = Dealer(rotated);
    auto r = again->Publish(ValidEvents(14, 2, "again-"), kAnswerTimeout);
    ASSERT_TRUE(r.ok() && r.value().has_value()) << "an invalid reload dropped the identities";
  }

  // Step 2: remove the old key. New handshakes with it are refused.
  Party new_key_only = publisher_;
  new_key_only.keys = {rotated};
  ASSERT_TRUE(hub_->WriteIdentities({new_key_only, analytics_, hospital_, operator_}).ok());
  ASSERT_TRUE(hub_->Reload().ok());
  {
    auto stale = Dealer(publisher_.keys[0]);
    EXPECT_EQ(stale->WaitForHandshake(kAnswerTimeout), kKeyRefused)
        << "a removed key was still let in";
  }

  // Narrowing an identity's ODS codes applies to connections already open, message by message.
  Party narrowed = new_key_only;
  std::vector<v1::Event> batch = ValidEvents(16, 6, "narrow-");
  const std::string dropped = batch[0].envelope().publisher_ods();
  narrowed.ods.erase(std::remove(narrowed.ods.begin(), narrowed.ods.end(), dropped),
                     narrowed.ods.end());
  ASSERT_FALSE(narrowed.ods.empty());
  ASSERT_TRUE(hub_->WriteIdentities({narrowed, analytics_, hospital_, operator_}).ok());
  ASSERT_TRUE(hub_->Reload().ok());
  auto third = fresh->Publish(batch, kAnswerTimeout);
  ASSERT_TRUE(third.ok() && third.value().has_value());
  for (int i = 0; i < third.value()->results_size(); ++i) {
    const auto& r = third.value()->results(i);
    if (batch[i].envelope().publisher_ods() == dropped) {
      EXPECT_EQ(r.reason(), "publisher_not_authorised") << i;
    } else {
      EXPECT_EQ(r.status(), v1::EventResult::ACCEPTED) << i << " " << r.reason();
    }
  }

  // Removing the identity altogether stops even the connection it opened before.
  ASSERT_TRUE(hub_->WriteIdentities({analytics_, hospital_, operator_}).ok());
  ASSERT_TRUE(hub_->Reload().ok());
  auto after_removal = fresh->Publish(ValidEvents(17, 2, "removed-"), kAnswerTimeout);
  ASSERT_TRUE(after_removal.ok() && after_removal.value().has_value());
  for (const auto& r : after_removal.value()->results()) {
    EXPECT_EQ(r.reason(), "publisher_not_authorised");
  }

  // Every change was audited.
  std::string audit = hub_->AdminGet("/api/v1/audit");
  EXPECT_NE(audit.find("identities_changed"), std::string::npos) << audit.substr(0, 2000);
  EXPECT_NE(audit.find("identities_rejected"), std::string::npos) << audit.substr(0, 2000);
}

// Start-up: curve mode with a missing or broken key or identities file exits non-zero with one
// line saying why.
// Removing a subscriber's identity ends the sessions it has open, before one more batch: found by a
// review, where a removed identity kept its session and received every direct-care event stored
// after the reload.
TEST_F(SecurityCurveTest, RemovedSubscriberIdentityEndsItsOpenSessionAtOnce) {
  auto dealer = Dealer(publisher_.keys[0]);
  auto published = dealer->Publish(events_, kAnswerTimeout);
  ASSERT_TRUE(published.ok() && published.value().has_value());
  auto feed = Subscribe(hospital_.keys[0], "lth-direct-care");
  ASSERT_TRUE(feed.ok()) << feed.status().ToString();
  const uint64_t head = feed.value()->subscribed().head_seq();
  size_t delivered_before = 0;
  const uint64_t scanned = DrainTo(*feed.value(), head, 100, /*ack=*/true, &delivered_before);
  ASSERT_FALSE(HasFailure());
  ASSERT_GE(scanned, head);
  ASSERT_GT(delivered_before, 0u)
      << "the feed must cover this workload for the test to mean anything";

  ASSERT_TRUE(hub_->WriteIdentities({publisher_, analytics_, operator_}).ok());
  ASSERT_TRUE(hub_->Reload().ok());
  // Stored after the identity was removed: the same shape of workload the feed received above.
  auto later = ValidEvents(8, 40, "after-removal-");
  auto published_later = dealer->Publish(later, kAnswerTimeout);
  ASSERT_TRUE(published_later.ok() && published_later.value().has_value());

  size_t delivered_after = 0;
  Status ended;
  // Bounded by the answer timeout: the session must end at its next delivery round.
  for (int i = 0; i < 50 && ended.ok(); ++i) {
    auto batch = feed.value()->Next(milliseconds(200));
    if (!batch.ok()) {
      ended = batch.status();
    } else if (batch.value()) {
      delivered_after += batch.value()->events.size();
    }
  }
  EXPECT_EQ(ended.code(), "identity_removed") << ended.ToString();
  EXPECT_EQ(delivered_after, 0u) << "events disclosed to a removed identity";
  // And it cannot come back.
  auto again = Subscribe(hospital_.keys[0], "lth-direct-care");
  EXPECT_FALSE(again.ok());
}

TEST(SecurityStartupTest, BadKeyOrIdentitiesFileStopsTheHub) {
  TempDir dir("sec-startup");
  KeyPair server = NewKeyPair();
  WriteKeyFile(dir.path() / "server.key", server);
  WriteKeyFile(dir.path() / "mismatched.key", KeyPair{NewKeyPair().pub, server.sec});
  {
    std::ofstream(dir.path() / "ids.yaml")
        << IdentitiesYaml({Party{"p", "publisher", {"RXK"}, "", {NewKeyPair()}}});
    std::ofstream(dir.path() / "bad-ids.yaml") << "identities:\n  p: {kind: publisher}\n";
  }
  struct Case {
    std::string key;
    std::string ids;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"missing.key", "ids.yaml", "cannot read key file"},
      {"mismatched.key", "ids.yaml", "does not match its public key"},
      {"server.key", "missing.yaml", "missing.yaml: cannot be read"},
      {"server.key", "bad-ids.yaml", "identities.p.ods: must be a list"},
  };
  for (const auto& c : cases) {
    auto hub = HubProcess::Start(
        HubOptions("sec-startup",
                   "security:\n  mode: curve\n  server_key_file: " + (dir.path() / c.key).string() +
                       "\n  identities: " + (dir.path() / c.ids).string() + "\n"));
    ASSERT_FALSE(hub.ok()) << c.expect;
    const std::string& message = hub.status().message();
    EXPECT_NE(message.find("exit code 1"), std::string::npos) << message;
    // The reason is on the hub's last line: "carehub: <reason>".
    auto at = message.find("carehub: ");
    ASSERT_NE(at, std::string::npos) << message;
    std::string line = message.substr(at, message.find('\n', at) - at);
    EXPECT_NE(line.find(c.expect), std::string::npos) << line;
  }
}

}  // namespace
}  // namespace carehub::itest::security
