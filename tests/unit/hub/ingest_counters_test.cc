// The ingest pipeline's per-publisher and per-type counts, through the real pipeline, group
// committer and RocksDB store: batches that mix publishers and types in every order, with resends
// and conflicts, give each label exactly the count the test expects from what it sent (counted
// here from the events themselves, not by the pipeline's code).
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "carehub/core/clock.h"
#include "carehub/core/event_types.h"
#include "carehub/core/synthetic.h"
#include "carehub/hub/ingest_pipeline.h"
#include "carehub/hub/store.h"
#include "carehub/metrics/registry.h"
#include "group_committer.h"
#include "pipeline_test_util.h"
#include "store_test_util.h"

namespace carehub::hub {
namespace {

using testing::CommitThroughPipeline;
using testing::FreshTestDir;

class IngestCountersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir("carehub-ingest-counters-test");
    auto store = Store::Open({dir_});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store.value());
    pipeline_ = std::make_unique<IngestPipeline>(store_.get(), &metrics_, ValidationLimits{}, 400,
                                                 SystemClock::Instance(), nullptr);
    committer_ = std::make_unique<GroupCommitter>(store_.get(), /*last_seq=*/0, /*sync=*/false,
                                                  &metrics_, nullptr, nullptr);
  }
  void TearDown() override {
    committer_->Stop();
    committer_.reset();
    pipeline_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Publishes `events` as one batch, committed by the hub's own group committer; the results.
  std::vector<v1::EventResult> Publish(const std::vector<v1::Event>& events) {
    v1::Publish publish;
    for (const auto& e : events) {
      *publish.add_events() = e;
    }
    auto done = CommitThroughPipeline(*pipeline_, *committer_, &publish);
    EXPECT_NE(done, nullptr);
    if (done == nullptr) {
      return {};
    }
    EXPECT_TRUE(done->committed);
    return {done->result.results().begin(), done->result.results().end()};
  }

  std::filesystem::path dir_;
  metrics::Registry metrics_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<IngestPipeline> pipeline_;
  std::unique_ptr<GroupCommitter> committer_;
};

TEST_F(IngestCountersTest, EveryPublisherAndTypeGetsExactlyItsOwnCounts) {
  SyntheticOptions so;
  so.seed = 31;
  so.id_prefix = "cnt-";
  so.publishers = {"RXK", "RR8", "M85001", "M85002", "RY6", "RA1", "RB1"};
  SyntheticGenerator gen(so);

  // What the test expects, from the events it sends.
  std::map<std::pair<std::string, std::string>, uint64_t> accepted;  // (publisher, type)
  std::map<std::string, uint64_t> received, duplicate, conflict, accepted_by_publisher;
  std::vector<v1::Event> sent;  // accepted originals, resent later

  for (int b = 0; b < 4; ++b) {
    std::vector<v1::Event> batch;
    for (int i = 0; i < 150; ++i) {
      batch.push_back(gen.Next());
    }
    // From the second batch on: resends of earlier events (same bytes: DUPLICATE), and one
    // earlier event id with other content (CONFLICT), placed between the new events.
    std::vector<v1::Event> resends, conflicts;
    if (b > 0) {
      for (size_t i = 0; i < sent.size(); i += 17) {
        resends.push_back(sent[i]);
      }
      v1::Event changed = sent[b * 5];
      changed.mutable_envelope()->set_source_system("changed-" + std::to_string(b));
      conflicts.push_back(changed);
    }
    for (const auto& e : batch) {
      ++accepted[{e.envelope().publisher_ods(), EventTypeName(e)}];
      ++accepted_by_publisher[e.envelope().publisher_ods()];
      ++received[e.envelope().publisher_ods()];
    }
    for (const auto& e : resends) {
      ++duplicate[e.envelope().publisher_ods()];
      ++received[e.envelope().publisher_ods()];
    }
    for (const auto& e : conflicts) {
      ++conflict[e.envelope().publisher_ods()];
      ++received[e.envelope().publisher_ods()];
    }
    std::vector<v1::Event> mixed;
    for (size_t i = 0; i < batch.size(); ++i) {
      mixed.push_back(batch[i]);
      if (i % 9 == 4 && !resends.empty()) {
        mixed.push_back(resends.back());
        resends.pop_back();
      }
      if (i == 70 && !conflicts.empty()) {
        mixed.push_back(conflicts.back());
        conflicts.pop_back();
      }
    }
    mixed.insert(mixed.end(), resends.begin(), resends.end());
    auto results = Publish(mixed);
    ASSERT_EQ(results.size(), mixed.size());
    uint64_t new_ok = 0;
    for (const auto& r : results) {
      new_ok += r.status() == v1::EventResult::ACCEPTED;
    }
    ASSERT_EQ(new_ok, batch.size()) << "batch " << b;
    sent.insert(sent.end(), batch.begin(), batch.end());
  }
  // Every (publisher, type) pair the events carried, and more than one type per publisher.
  ASSERT_GE(accepted.size(), 2 * so.publishers.size());

  for (const auto& [label, n] : accepted) {
    EXPECT_EQ(metrics_.CounterTotal("carehub_events_accepted_total",
                                    {{"publisher", label.first}, {"type", label.second}}),
              n)
        << label.first << " " << label.second;
  }
  EXPECT_EQ(metrics_.CounterTotal("carehub_events_accepted_total"), sent.size());
  const auto activity = pipeline_->Activity();
  for (const auto& publisher : so.publishers) {
    SCOPED_TRACE(publisher);
    EXPECT_EQ(metrics_.CounterTotal("carehub_events_received_total", {{"publisher", publisher}}),
              received[publisher]);
    EXPECT_EQ(metrics_.CounterTotal("carehub_events_duplicate_total", {{"publisher", publisher}}),
              duplicate[publisher]);
    EXPECT_EQ(metrics_.CounterTotal("carehub_events_conflict_total", {{"publisher", publisher}}),
              conflict[publisher]);
    ASSERT_EQ(activity.count(publisher), 1u);
    const auto& a = activity.at(publisher);
    EXPECT_EQ(a.received, received[publisher]);
    EXPECT_EQ(a.accepted, accepted_by_publisher[publisher]);
    EXPECT_EQ(a.duplicate, duplicate[publisher]);
    EXPECT_EQ(a.rejected, conflict[publisher]);
    EXPECT_EQ(a.quality.events, accepted_by_publisher[publisher]);
  }
  // Each batch was committed before the next was sent, so every resend and conflicting event was
  // answered from the store's dedup index (not from keys in flight), every new event was not.
  uint64_t from_store = 0;
  for (const auto& [publisher, n] : duplicate) {
    from_store += n;
  }
  for (const auto& [publisher, n] : conflict) {
    from_store += n;
  }
  EXPECT_EQ(metrics_.CounterTotal("carehub_dedup_lookup_keys_total", {{"result", "stored"}}),
            from_store);
  EXPECT_EQ(metrics_.CounterTotal("carehub_dedup_lookup_keys_total", {{"result", "new"}}),
            sent.size());
}

}  // namespace
}  // namespace carehub::hub
