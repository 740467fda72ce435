// docs/protocol.md as a vendor reads it (issue 16): the doc's table of reason and error codes is
// the contract. This test reads that table and, for every code it says this test proves, provokes
// the code against a running hub exactly as a client written from the doc would meet it, and
// expects exactly that code in exactly that place (EventResult.reason, ingest or subscribe
// Error.code, Notice.code). For a code another test proves, that test's source must provoke it by
// name. And every reason code the validator can give (core/include/carehub/core/validation.h) must
// be in the table. A code renamed in the hub, or a row added to the doc without a way to meet it,
// fails here.

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "harness/hub_process.h"
#include "harness/raw_publisher.h"
#include "harness/workload.h"
#include "subscribe_support.h"

namespace carehub::itest {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr milliseconds kAnswerTimeout{10'000};
constexpr size_t kMaxFrameBytes = 128 * 1024;
constexpr size_t kMaxEventsPerBatch = 20;

std::string ReadSource(const std::string& relative) {
  std::ifstream in(std::filesystem::path(CAREHUB_SOURCE_DIR) / relative);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

struct DocRow {
  std::string code;
  std::string answered_in;
  std::string proved_by;
};

// The rows of the "Reason and error codes" table: | `code` | answered in | when | proved by |.
std::vector<DocRow> DocumentedCodes() {
  const std::string doc = ReadSource("docs/protocol.md");
  const auto start = doc.find("## Reason and error codes");
  EXPECT_NE(start, std::string::npos) << "docs/protocol.md has no codes table";
  std::vector<DocRow> rows;
  if (start == std::string::npos) {
    return rows;
  }
  const auto end = doc.find("\n## ", start + 1);
  std::istringstream section(doc.substr(start, end - start));
  static const std::regex row(R"(^\| `([a-z_]+)` \| ([^|]+) \| [^|]+ \| `([^`]+)` \|$)");
  std::string line;
  while (std::getline(section, line)) {
    std::smatch m;
    if (std::regex_match(line, m, row)) {
      rows.push_back({m[1], m[2], m[3]});
    }
  }
  return rows;
}

constexpr const char* kAgreements = R"(subscribers:
  - id: doc-reader
    subscriptions:
      - {id: doc-feed, purpose: direct_care}
      - {id: doc-removed-feed, purpose: direct_care}
      - {id: doc-research, purpose: secondary_use}
  - id: ended-pilot
    subscriptions:
      - {id: doc-expired-feed, purpose: direct_care}
  - id: future-service
    subscriptions:
      - {id: doc-future-feed, purpose: direct_care}
agreements:
  - id: DSA-DOC
    subscriber: doc-reader
    purpose: direct_care
    legal_basis: "test"
    valid_from: 2020-01-01
    valid_until: 2099-12-31
    sources: ["*"]
    event_types: ["*"]
    patient_fields: identifiable
  - id: DSA-DOC-OLD
    subscriber: ended-pilot
    purpose: direct_care
    legal_basis: "test: ended"
    valid_from: 2020-01-01
    valid_until: 2021-12-31
    sources: ["*"]
    event_types: ["*"]
    patient_fields: identifiable
  - id: DSA-DOC-NEXT
    subscriber: future-service
    purpose: direct_care
    legal_basis: "test: not started"
    valid_from: 2099-01-01
    valid_until: 2099-12-31
    sources: ["*"]
    event_types: ["*"]
    patient_fields: identifiable
)";

class ProtocolDocTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto agreements = WritePolicyFiles(dir_.path(), kAgreements);
    ASSERT_TRUE(agreements.ok()) << agreements.status().ToString();
    agreements_ = agreements.value();
    auto hub = HubProcess::Start(HubWithAgreements(
        "protocol-doc", agreements_,
        "ingest:\n  max_frame_bytes: " + std::to_string(kMaxFrameBytes) +
            "\n  max_events_per_batch: " + std::to_string(kMaxEventsPerBatch) + "\n"));
    ASSERT_TRUE(hub.ok()) << hub.status().ToString();
    hub_ = std::move(hub).value();
  }

  v1::Event ValidEvent() { return gen_.Next(); }

  // The reason the hub gives for `event` published alone.
  std::string EventReason(const v1::Event& event) {
    auto pub = RawPublisher::Connect(hub_->ingest_endpoint());
    if (!pub.ok()) {
      return "connect failed: " + pub.status().ToString();
    }
    auto result = pub.value()->Publish(std::vector<v1::Event>{event}, kAnswerTimeout);
    if (!result.ok()) {
      return "no result: " + result.status().ToString();
    }
    return result.value().results(0).reason();
  }

  // The Error code the hub answers `bytes` with on the ingest endpoint.
  std::string IngestError(const std::string& bytes) {
    auto pub = RawPublisher::Connect(hub_->ingest_endpoint());
    if (!pub.ok() || !pub.value()->SendBytes(bytes).ok()) {
      return "send failed";
    }
    auto error = pub.value()->WaitForError(kAnswerTimeout);
    return error.ok() && error.value() ? error.value()->code() : "no Error frame";
  }

  // What the subscribe endpoint answers first to `frames` sent in order on one connection: the
  // Error or Notice code (Subscribed and Delivery frames skipped).
  std::string SubscribeAnswer(const std::vector<v1::Frame>& frames) {
    auto conn = RawPublisher::Connect(hub_->subscribe_endpoint());
    if (!conn.ok()) {
      return "connect failed";
    }
    for (const auto& f : frames) {
      if (!conn.value()->SendFrame(f).ok()) {
        return "send failed";
      }
    }
    return NextCode(*conn.value());
  }

  static std::string NextCode(RawPublisher& conn) {
    const auto deadline = std::chrono::steady_clock::now() + kAnswerTimeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto frame = conn.Receive(milliseconds(200));
      if (!frame.ok()) {
        return "bad frame: " + frame.status().ToString();
      }
      if (!frame.value()) {
        continue;
      }
      if (frame.value()->has_error()) {
        return frame.value()->error().code();
      }
      if (frame.value()->has_notice()) {
        return frame.value()->notice().code();
      }
    }
    return "no Error or Notice";
  }

  static v1::Frame Subscribe(const std::string& subscription,
                             v1::Subscribe::Start start = v1::Subscribe::START_EARLIEST) {
    v1::Frame f;
    f.set_version(v1::PROTOCOL_VERSION_1);
    f.mutable_subscribe()->set_subscription(subscription);
    f.mutable_subscribe()->set_start(start);
    f.mutable_subscribe()->set_initial_credit(100);
    return f;
  }

  static v1::Frame Publish(std::vector<v1::Event> events, uint64_t batch_id) {
    v1::Frame f;
    f.set_version(v1::PROTOCOL_VERSION_1);
    f.mutable_publish()->set_batch_id(batch_id);
    for (auto& e : events) {
      *f.mutable_publish()->add_events() = std::move(e);
    }
    return f;
  }

  // Code -> what provokes it and returns the hub's answer.
  std::map<std::string, std::function<std::string()>> Provokers();

  TempDir dir_{"protocol-doc"};
  std::filesystem::path agreements_;
  std::unique_ptr<HubProcess> hub_;
  SyntheticGenerator gen_{FixedSyntheticOptions(5150, "doc-")};
};

std::map<std::string, std::function<std::string()>> ProtocolDocTest::Provokers() {
  using Mutate = std::function<void(v1::Event*)>;
  auto reason_of = [this](Mutate mutate) {
    return [this, mutate] {
      v1::Event e = ValidEvent();
      mutate(&e);
      return EventReason(e);
    };
  };
  std::map<std::string, std::function<std::string()>> p;
  p["missing_field"] = reason_of([](v1::Event* e) { e->mutable_envelope()->clear_event_id(); });
  p["invalid_field"] =
      reason_of([](v1::Event* e) { e->mutable_envelope()->set_event_id("doc-\x01-id"); });
  // 1234567890: the Modulus 11 check digit would be 10, which no valid NHS number has.
  p["invalid_nhs_number"] = reason_of(
      [](v1::Event* e) { e->mutable_envelope()->mutable_patient()->set_nhs_number("1234567890"); });
  p["invalid_ods_code"] =
      reason_of([](v1::Event* e) { e->mutable_envelope()->set_publisher_ods("not ods!"); });
  p["invalid_timestamp"] = reason_of([](v1::Event* e) {
    e->mutable_envelope()->mutable_occurred_at()->set_seconds(-2'300'000'000);  // 1897
  });
  p["future_timestamp"] = reason_of([](v1::Event* e) {
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    e->mutable_envelope()->mutable_occurred_at()->set_seconds(now + 86'400);
  });
  p["invalid_lifecycle"] = reason_of([](v1::Event* e) {
    e->mutable_envelope()->set_lifecycle(v1::LIFECYCLE_UPDATE);
    e->mutable_envelope()->clear_supersedes_event_id();
  });
  p["invalid_event_type"] = reason_of([](v1::Event* e) {
    if (e->has_activity()) {
      e->mutable_activity()->set_kind(v1::ACTIVITY_KIND_UNSPECIFIED);
    } else {
      e->mutable_referral()->set_status(static_cast<v1::ReferralStatus>(0));
    }
  });
  p["event_too_large"] = reason_of([](v1::Event* e) {
    // 80 KiB: over the 64 KiB event limit, under this hub's 128 KiB frame limit.
    e->mutable_envelope()->mutable_patient()->set_address(std::string(80 * 1024, 'a'));
  });
  p["conflict"] = [this] {
    v1::Event first = ValidEvent();
    if (EventReason(first) != "") {
      return std::string("the first send was not accepted");
    }
    v1::Event changed = first;
    changed.mutable_envelope()->mutable_patient()->set_family_name("Changed");
    return EventReason(changed);
  };
  p["malformed_frame"] = [this] {
    const std::string ingest = IngestError(std::string("\x07garbage", 8));
    // On the subscribe endpoint too.
    auto conn = RawPublisher::Connect(hub_->subscribe_endpoint());
    if (!conn.ok() || !conn.value()->SendBytes(std::string("\x07garbage", 8)).ok()) {
      return std::string("send failed");
    }
    const std::string on_subscribe = NextCode(*conn.value());
    return ingest == on_subscribe ? ingest : ingest + " / subscribe: " + on_subscribe;
  };
  p["frame_too_large"] = [this] { return IngestError(std::string(kMaxFrameBytes + 1000, 'x')); };
  p["batch_too_large"] = [this] {
    std::vector<v1::Event> events;
    for (size_t i = 0; i <= kMaxEventsPerBatch; ++i) {
      events.push_back(ValidEvent());
    }
    return IngestError(Publish(std::move(events), 4711).SerializeAsString());
  };
  p["unsupported_version"] = [this] {
    v1::Frame f = Publish({ValidEvent()}, 1);
    f.set_version(static_cast<v1::ProtocolVersion>(2));
    return IngestError(f.SerializeAsString());
  };
  p["unknown_kind"] = [this] {
    v1::Frame f;
    f.set_version(v1::PROTOCOL_VERSION_1);
    return IngestError(f.SerializeAsString());
  };
  p["unexpected_kind"] = [this] {
    const std::string on_ingest = IngestError(Subscribe("doc-feed").SerializeAsString());
    const std::string on_subscribe = SubscribeAnswer({Publish({ValidEvent()}, 2)});
    return on_ingest == on_subscribe ? on_ingest : on_ingest + " / subscribe: " + on_subscribe;
  };
  p["no_subscription"] = [this] {
    v1::Frame credit;
    credit.set_version(v1::PROTOCOL_VERSION_1);
    credit.mutable_credit()->set_events(10);
    return SubscribeAnswer({credit});
  };
  p["bad_request"] = [this] {
    return SubscribeAnswer({Subscribe("doc-feed", static_cast<v1::Subscribe::Start>(99))});
  };
  p["unknown_subscription"] = [this] { return SubscribeAnswer({Subscribe("no-such-feed")}); };
  p["superseded"] = [this] {
    auto first = RawPublisher::Connect(hub_->subscribe_endpoint());
    if (!first.ok() || !first.value()->SendFrame(Subscribe("doc-feed")).ok()) {
      return std::string("first subscribe failed");
    }
    // The first session is open once the hub has answered it.
    auto subscribed = first.value()->Receive(kAnswerTimeout);
    if (!subscribed.ok() || !subscribed.value() || !subscribed.value()->has_subscribed()) {
      return std::string("first subscribe not answered");
    }
    auto second = RawPublisher::Connect(hub_->subscribe_endpoint());
    if (!second.ok() || !second.value()->SendFrame(Subscribe("doc-feed")).ok()) {
      return std::string("second subscribe failed");
    }
    return NextCode(*first.value());
  };
  p["subscription_removed"] = [this] {
    auto conn = RawPublisher::Connect(hub_->subscribe_endpoint());
    if (!conn.ok() || !conn.value()->SendFrame(Subscribe("doc-removed-feed")).ok()) {
      return std::string("subscribe failed");
    }
    auto subscribed = conn.value()->Receive(kAnswerTimeout);
    if (!subscribed.ok() || !subscribed.value() || !subscribed.value()->has_subscribed()) {
      return std::string("subscribe not answered");
    }
    std::string narrowed = kAgreements;
    const std::string line = "      - {id: doc-removed-feed, purpose: direct_care}\n";
    narrowed.erase(narrowed.find(line), line.size());
    if (!WriteFileAtomically(agreements_, narrowed).ok()) {
      return std::string("cannot rewrite the agreements");
    }
    hub_->Signal(SIGHUP);
    return NextCode(*conn.value());
  };
  p["agreement_expired"] = [this] { return SubscribeAnswer({Subscribe("doc-expired-feed")}); };
  p["agreement_not_yet_valid"] = [this] { return SubscribeAnswer({Subscribe("doc-future-feed")}); };
  p["no_agreement"] = [this] { return SubscribeAnswer({Subscribe("doc-research")}); };
  return p;
}

TEST_F(ProtocolDocTest, EveryDocumentedCodeIsWhatTheHubAnswers) {
  const auto rows = DocumentedCodes();
  ASSERT_GE(rows.size(), 20u) << "the codes table in docs/protocol.md did not parse";
  auto provokers = Provokers();
  std::set<std::string> documented;
  for (const auto& row : rows) {
    SCOPED_TRACE(row.code + " (" + row.answered_in + ")");
    documented.insert(row.code);
    if (row.proved_by == "protocol_doc_test") {
      auto it = provokers.find(row.code);
      ASSERT_NE(it, provokers.end()) << "documented as proved here, but nothing here provokes it";
      EXPECT_EQ(it->second(), row.code);
      provokers.erase(it);
    } else {
      const std::string source = ReadSource(row.proved_by);
      ASSERT_FALSE(source.empty()) << row.proved_by << " does not exist";
      EXPECT_NE(source.find('"' + row.code + '"'), std::string::npos)
          << row.proved_by << " does not provoke " << row.code << " by name";
    }
  }
  for (const auto& [code, provoke] : provokers) {
    ADD_FAILURE() << "the hub answers " << code << " but docs/protocol.md's table does not list it";
  }
  // Every reason the validator can give is documented.
  const std::string validation = ReadSource("core/include/carehub/core/validation.h");
  static const std::regex reason(R"re(kReason[A-Za-z]+ = "([a-z_]+)")re");
      size_t reasons = 0;
  for (std::sregex_iterator it(validation.begin(), validation.end(), reason), end; it != end;
       ++it) {
    ++reasons;
    EXPECT_TRUE(documented.count((*it)[1])) << (*it)[1] << " is not in docs/protocol.md's table";
  }
  EXPECT_GE(reasons, 9u) << "validation.h's reason codes did not parse";
}

}  // namespace
}  // namespace carehub::itest
