// Durable, deduplicating ingest through the real daemon: every unique valid event is stored once,
// resends are answered DUPLICATE with the original hub_seq, invalid events are REJECTED with their
// reason and quarantined, and a changed event under a stored key is a CONFLICT.

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "carehub/hub/consistency.h"
#include "carehub/hub/store/event_codec.h"
#include "harness/hub_process.h"
#include "harness/raw_publisher.h"
#include "harness/workload.h"

namespace carehub::itest {
namespace {

using google::protobuf::util::MessageDifferencer;
using std::chrono::seconds;

// Collects mismatches over a large run and reports the first few, rather than one failure line
// per event.
class Findings {
 public:
  void Add(const std::string& what) {
    if (count_++ < 10) {
      first_ += "  " + what + "\n";
    }
  }
  size_t count() const { return count_; }
  std::string Report() const {
    return std::to_string(count_) + " mismatches; first ones:\n" + first_;
  }

 private:
  size_t count_ = 0;
  std::string first_;
};

std::string StatusName(v1::EventResult::Status s) { return v1::EventResult::Status_Name(s); }

TEST(IngestDedupTest, StoresEachUniqueValidEventOnceAndAnswersResendsAndInvalids) {
  WorkloadOptions wo;
  wo.seed = 20'260'101;
  wo.id_prefix = "dedup-";
  wo.events = 100'000;
  wo.resend_ratio = 0.10;
  wo.invalid_ratio = 0.01;
  Workload w = MakeWorkload(wo);
  ASSERT_GT(w.resend_count, 9'000u);
  ASSERT_GT(w.invalid_count, 800u);

  auto hub = HubProcess::Start(HubOptions("dedup"));
  ASSERT_TRUE(hub.ok()) << hub.status().ToString();
  auto pub = RawPublisher::Connect(hub.value()->ingest_endpoint());
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();

  auto results = pub.value()->PublishAll(w.events, 1000, 8, seconds(120));
  ASSERT_TRUE(results.ok()) << results.status().ToString();
  const auto& r = results.value();
  ASSERT_EQ(r.size(), w.events.size());

  Findings findings;
  std::set<uint64_t> accepted_seqs;
  for (size_t i = 0; i < r.size(); ++i) {
    const std::string where =
        "event " + std::to_string(i) + " (" + w.events[i].envelope().event_id() + "): ";
    switch (w.kinds[i]) {
      case Workload::Kind::kFirst:
        if (r[i].status() != v1::EventResult::ACCEPTED || r[i].hub_seq() == 0) {
          findings.Add(where + "expected ACCEPTED, got " + StatusName(r[i].status()) + " " +
                       r[i].reason());
        } else if (!accepted_seqs.insert(r[i].hub_seq()).second) {
          findings.Add(where + "hub_seq " + std::to_string(r[i].hub_seq()) + " given twice");
        }
        break;
      case Workload::Kind::kResend:
        if (r[i].status() != v1::EventResult::DUPLICATE ||
            r[i].hub_seq() != r[w.original[i]].hub_seq()) {
          findings.Add(where + "expected DUPLICATE of hub_seq " +
                       std::to_string(r[w.original[i]].hub_seq()) + ", got " +
                       StatusName(r[i].status()) + " " + std::to_string(r[i].hub_seq()));
        }
        break;
      case Workload::Kind::kInvalid:
        if (r[i].status() != v1::EventResult::REJECTED || r[i].reason() != w.reasons[i]) {
          findings.Add(where + "expected REJECTED " + w.reasons[i] + ", got " +
                       StatusName(r[i].status()) + " " + r[i].reason());
        }
        break;
    }
    if (r[i].event_id() != w.events[i].envelope().event_id()) {
      findings.Add(where + "answer names event_id '" + r[i].event_id() + "'");
    }
  }
  EXPECT_EQ(findings.count(), 0u) << findings.Report();
  auto counts = CountResults(r);
  EXPECT_EQ(counts.accepted, w.first_count);
  EXPECT_EQ(counts.duplicate, w.resend_count);
  EXPECT_EQ(counts.rejected, w.invalid_count);
  EXPECT_EQ(counts.conflict + counts.retry + counts.other, 0u);

  auto stopped = hub.value()->Stop();
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_TRUE(stopped.value().Exited(0)) << stopped.value().ToString();

  auto store = hub.value()->OpenStore();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(MustRead(store.value()->events().LastSeq(), "last seq"), w.first_count);
  auto stored = ReadAllEvents(*store.value());
  ASSERT_EQ(stored.size(), w.first_count);

  // Each accepted event is in the log exactly once, at the hub_seq it was given, unchanged.
  std::map<uint64_t, const v1::Event*> by_seq;
  std::set<std::string> stored_ids;
  for (const auto& s : stored) {
    by_seq[s.hub_seq] = &s.event;
    if (s.event.envelope().hub_seq() != s.hub_seq) {
      findings.Add("stored event at " + std::to_string(s.hub_seq) + " says hub_seq " +
                   std::to_string(s.event.envelope().hub_seq()));
    }
    if (!stored_ids.insert(s.event.envelope().event_id()).second) {
      findings.Add("event_id " + s.event.envelope().event_id() + " stored twice");
    }
  }
  for (size_t i = 0; i < r.size(); ++i) {
    if (w.kinds[i] != Workload::Kind::kFirst) {
      continue;
    }
    auto it = by_seq.find(r[i].hub_seq());
    if (it == by_seq.end()) {
      findings.Add("accepted event " + w.events[i].envelope().event_id() + " missing");
    } else if (!MessageDifferencer::Equals(WithoutHubFields(*it->second), w.events[i])) {
      findings.Add("stored event at " + std::to_string(it->first) + " differs from what was sent");
    }
  }
  EXPECT_EQ(findings.count(), 0u) << findings.Report();

  // Every rejected event is quarantined with its reason and its bytes.
  std::multiset<std::pair<std::string, std::string>> expected_q;
  for (size_t i = 0; i < r.size(); ++i) {
    if (w.kinds[i] == Workload::Kind::kInvalid) {
      expected_q.emplace(w.events[i].envelope().event_id(), w.reasons[i]);
    }
  }
  std::multiset<std::pair<std::string, std::string>> actual_q;
  for (const auto& q : ReadAllQuarantine(*store.value())) {
    EXPECT_EQ(q.raw_kind(), "event");
    v1::Event raw;
    EXPECT_TRUE(raw.ParseFromString(q.raw())) << "quarantine record " << q.id();
    EXPECT_EQ(raw.envelope().event_id(), q.event_id());
    actual_q.emplace(q.event_id(), q.reason());
  }
  EXPECT_EQ(actual_q.size(), w.invalid_count);
  EXPECT_TRUE(actual_q == expected_q) << "quarantine does not match the invalid events sent";
}

TEST(IngestDedupTest, SameKeyDifferentContentIsConflictAndOriginalStaysUnchanged) {
  SyntheticGenerator gen(FixedSyntheticOptions(7, "conflict-"));
  const v1::Event a = gen.Next();
  const v1::Event b = gen.Next();
  // Same (publisher_ods, event_id), other content: a source system that reused an id.
  auto changed = [](v1::Event e) {
    e.mutable_envelope()->set_source_system(e.envelope().source_system() + "-changed");
    return e;
  };
  const v1::Event a2 = changed(a);
  const v1::Event b2 = changed(b);

  auto hub = HubProcess::Start(HubOptions("conflict"));
  ASSERT_TRUE(hub.ok()) << hub.status().ToString();
  auto pub = RawPublisher::Connect(hub.value()->ingest_endpoint());
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  auto& p = *pub.value();

  // Against a committed original.
  auto first = p.Publish(std::vector<v1::Event>{a}, seconds(10));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->results(0).status(), v1::EventResult::ACCEPTED);
  const uint64_t seq_a = first->results(0).hub_seq();

  auto second = p.Publish(std::vector<v1::Event>{a2}, seconds(10));
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->results(0).status(), v1::EventResult::CONFLICT);
  EXPECT_EQ(second->results(0).reason(), "conflict");
  EXPECT_EQ(second->results(0).event_id(), a.envelope().event_id());

  // Against an original in the same batch (not yet committed when the copy is judged).
  auto same_batch = p.Publish(std::vector<v1::Event>{b, b2, a}, seconds(10));
  ASSERT_TRUE(same_batch.ok()) << same_batch.status().ToString();
  ASSERT_EQ(same_batch->results_size(), 3);
  EXPECT_EQ(same_batch->results(0).status(), v1::EventResult::ACCEPTED);
  const uint64_t seq_b = same_batch->results(0).hub_seq();
  EXPECT_EQ(same_batch->results(1).status(), v1::EventResult::CONFLICT);
  EXPECT_EQ(same_batch->results(1).reason(), "conflict");
  // The original still resends as a DUPLICATE of itself after the conflict.
  EXPECT_EQ(same_batch->results(2).status(), v1::EventResult::DUPLICATE);
  EXPECT_EQ(same_batch->results(2).hub_seq(), seq_a);

  auto stopped = hub.value()->Stop();
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_TRUE(stopped.value().Exited(0)) << stopped.value().ToString();

  auto store = hub.value()->OpenStore();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto stored = ReadAllEvents(*store.value());
  ASSERT_EQ(stored.size(), 2u);
  auto stored_a = MustRead(store.value()->events().Get(seq_a), "event");
  ASSERT_TRUE(stored_a.has_value());
  EXPECT_TRUE(MessageDifferencer::Equals(WithoutHubFields(*stored_a), a));
  auto stored_b = MustRead(store.value()->events().Get(seq_b), "event");
  ASSERT_TRUE(stored_b.has_value());
  EXPECT_TRUE(MessageDifferencer::Equals(WithoutHubFields(*stored_b), b));

  auto quarantine = ReadAllQuarantine(*store.value());
  ASSERT_EQ(quarantine.size(), 2u);
  const v1::Event* expected[] = {&a2, &b2};
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(quarantine[i].reason(), "conflict");
    EXPECT_EQ(quarantine[i].raw_kind(), "event");
    EXPECT_EQ(quarantine[i].event_id(), expected[i]->envelope().event_id());
    EXPECT_EQ(quarantine[i].publisher_ods(), expected[i]->envelope().publisher_ods());
    v1::Event raw;
    ASSERT_TRUE(raw.ParseFromString(quarantine[i].raw()));
    EXPECT_TRUE(MessageDifferencer::Equals(raw, *expected[i]));
  }
}

// Sends one Publish frame whose events are the given bytes as they are, and waits for its result.
v1::PublishResult PublishBytes(RawPublisher& pub, uint64_t batch_id,
                               const std::vector<std::string>& events) {
  std::string publish;
  hub::AppendVarintField(&publish, v1::Publish::kBatchIdFieldNumber, batch_id);
  for (const auto& e : events) {
    hub::AppendLengthDelimited(&publish, v1::Publish::kEventsFieldNumber, e);
  }
  std::string frame;
  hub::AppendVarintField(&frame, v1::Frame::kVersionFieldNumber, v1::PROTOCOL_VERSION_1);
  hub::AppendLengthDelimited(&frame, v1::Frame::kPublishFieldNumber, publish);
  EXPECT_TRUE(pub.SendBytes(frame).ok());
  auto answer = pub.Receive(seconds(10));
  EXPECT_TRUE(answer.ok() && answer->has_value() && (*answer)->has_publish_result())
      << (answer.ok() ? "no PublishResult" : answer.status().ToString());
  if (!answer.ok() || !answer->has_value()) {
    return {};
  }
  EXPECT_EQ((*answer)->publish_result().batch_id(), batch_id);
  return (*answer)->publish_result();
}

// The same event with its envelope last: valid protobuf, not the canonical field order.
std::string EnvelopeLast(const v1::Event& event) {
  v1::Event envelope_only;
  *envelope_only.mutable_envelope() = event.envelope();
  v1::Event rest = event;
  rest.clear_envelope();
  return rest.SerializeAsString() + envelope_only.SerializeAsString();
}

// The hub stores each event as its publisher encoded it (plus its hub fields), and a resend is
// still judged by content: the same event in another field order is a DUPLICATE of it, whether
// the original is committed or in the same batch, and a changed one a CONFLICT.
TEST(IngestDedupTest, ResendInAnotherEncodingIsDuplicateAndTheStoredRecordIsAsSent) {
  SyntheticGenerator gen(FixedSyntheticOptions(11, "encoding-"));
  const v1::Event a = gen.Next();
  const v1::Event b = gen.Next();
  v1::Event a_changed = a;
  a_changed.mutable_envelope()->set_source_system(a.envelope().source_system() + "-changed");
  const std::string a_sent = EnvelopeLast(a);
  ASSERT_NE(a_sent, a.SerializeAsString());

  auto hub = HubProcess::Start(HubOptions("encoding"));
  ASSERT_TRUE(hub.ok()) << hub.status().ToString();
  auto pub = RawPublisher::Connect(hub.value()->ingest_endpoint());
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  auto& p = *pub.value();

  auto first = PublishBytes(p, 1, {a_sent});
  ASSERT_EQ(first.results_size(), 1);
  ASSERT_EQ(first.results(0).status(), v1::EventResult::ACCEPTED);
  const uint64_t seq_a = first.results(0).hub_seq();

  // Against the committed original: canonical bytes, the envelope-last bytes again, a change.
  auto second = PublishBytes(p, 2, {a.SerializeAsString(), a_sent, EnvelopeLast(a_changed)});
  ASSERT_EQ(second.results_size(), 3);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(second.results(i).status(), v1::EventResult::DUPLICATE) << i;
    EXPECT_EQ(second.results(i).hub_seq(), seq_a) << i;
  }
  EXPECT_EQ(second.results(2).status(), v1::EventResult::CONFLICT);

  // Against an original in the same batch, not yet committed when its copy is judged.
  auto third = PublishBytes(p, 3, {EnvelopeLast(b), b.SerializeAsString()});
  ASSERT_EQ(third.results_size(), 2);
  ASSERT_EQ(third.results(0).status(), v1::EventResult::ACCEPTED);
  const uint64_t seq_b = third.results(0).hub_seq();
  EXPECT_EQ(third.results(1).status(), v1::EventResult::DUPLICATE);
  EXPECT_EQ(third.results(1).hub_seq(), seq_b);

  auto stopped = hub.value()->Stop();
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_TRUE(stopped.value().Exited(0)) << stopped.value().ToString();

  auto store = hub.value()->OpenStore();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(ReadAllEvents(*store.value()).size(), 2u);
  auto records = MustRead(store.value()->events().MultiGet({seq_a, seq_b}), "records");
  ASSERT_EQ(records.size(), 2u);
  const std::string sent[] = {a_sent, EnvelopeLast(b)};
  const v1::Event* events[] = {&a, &b};
  for (size_t i = 0; i < 2; ++i) {
    v1::Event stored;
    ASSERT_TRUE(stored.ParseFromString(records[i]));
    EXPECT_TRUE(MessageDifferencer::Equals(WithoutHubFields(stored), *events[i]));
    auto accepted = hub::AcceptedBytes(records[i], stored);
    ASSERT_TRUE(accepted.has_value()) << "record " << i << " does not end with its hub fields";
    EXPECT_EQ(*accepted, sent[i]) << "record " << i << " is not the bytes the publisher sent";
  }
  auto report = hub::CheckConsistency(*store.value());
  EXPECT_TRUE(report.ok() && report.value().problem_count == 0)
      << (report.ok() ? report.value().Summary() : report.status().ToString());
}

// The one invalid kind judged against the hub's wall clock: generated with the real time.
TEST(IngestDedupTest, FutureOccurredAtIsRejectedAgainstTheHubClock) {
  SyntheticOptions so;
  so.seed = 3;
  so.id_prefix = "future-";
  so.now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  SyntheticGenerator gen(so);
  v1::Event e = gen.Next();
  std::string reason = gen.MakeInvalid(&e, InvalidKind::kFutureOccurredAt);

  auto hub = HubProcess::Start(HubOptions("future"));
  ASSERT_TRUE(hub.ok()) << hub.status().ToString();
  auto pub = RawPublisher::Connect(hub.value()->ingest_endpoint());
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  auto result = pub.value()->Publish(std::vector<v1::Event>{e, gen.Next()}, seconds(10));
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->results(0).status(), v1::EventResult::REJECTED);
  EXPECT_EQ(result->results(0).reason(), reason);
  EXPECT_EQ(result->results(1).status(), v1::EventResult::ACCEPTED);
  auto stopped = hub.value()->Stop();
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_TRUE(stopped.value().Exited(0)) << stopped.value().ToString();
}

}  // namespace
}  // namespace carehub::itest
