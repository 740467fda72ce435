// CheckConsistency on a real RocksDB store filled by the real ingest pipeline: a consistent store
// passes (also after retention), and each kind of damage a crash or a bug could leave is reported.
#include "carehub/hub/consistency.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <filesystem>

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

constexpr size_t kEvents = 300;

using testing::CommitThroughPipeline;
using testing::FreshTestDir;
using testing::Ok;

class ConsistencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir("carehub-consistency-test");
    Open();
    // Three batches through the real pipeline: events, dedup keys, routes and known routes.
    IngestPipeline pipeline(store_.get(), &metrics_, ValidationLimits{}, 400,
                            SystemClock::Instance(), nullptr);
    SyntheticOptions so;
    so.seed = 7;
    so.id_prefix = "cons-";
    SyntheticGenerator gen(so);
    GroupCommitter committer(store_.get(), /*last_seq=*/0, /*sync=*/true, &metrics_, nullptr,
                             nullptr);
    for (size_t b = 0; b < 3; ++b) {
      v1::Publish publish;
      for (size_t i = 0; i < kEvents / 3; ++i) {
        *publish.add_events() = gen.Next();
      }
      // Committed by the hub's own group committer, as the ingest server does.
      auto done = CommitThroughPipeline(pipeline, committer, &publish);
      ASSERT_NE(done, nullptr);
      ASSERT_TRUE(done->committed);
      for (const auto& r : done->result.results()) {
        ASSERT_EQ(r.status(), v1::EventResult::ACCEPTED) << r.reason() << " " << r.message();
      }
    }
    committer.Stop();
    ASSERT_EQ(Ok(store_->events().LastSeq()), kEvents);
    ASSERT_TRUE(store_->cursors().Put("feed", kEvents / 2).ok());
    v1::AuditRecord audit;
    audit.set_at_unix_ms(1000);
    audit.set_kind("delivery");
    audit.set_subscription("feed");
    audit.set_from_seq(1);
    audit.set_to_seq(kEvents / 2);
    audit.set_delivered(kEvents / 2);
    ASSERT_TRUE(store_->audit().Append(audit).ok());
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Open() {
    auto store = Store::Open(StoreOptions{dir_});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  ConsistencyReport Check() {
    auto report = CheckConsistency(*store_);
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    return report.ok() ? report.value() : ConsistencyReport{};
  }

  // Deletes one key of column family `cf` with plain RocksDB, as a bug or lost write would: the
  // Store has no API to remove a dedup key, on purpose.
  void DeleteRaw(const std::string& cf, const std::string& key) {
    store_.reset();
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies({}, dir_.string(), &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (const auto& n : names) {
      descriptors.emplace_back(n, rocksdb::ColumnFamilyOptions());
    }
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open({}, dir_.string(), descriptors, &handles, &raw).ok());
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == cf) {
        EXPECT_TRUE(raw->Delete({}, handles[i], key).ok());
      }
    }
    for (auto* h : handles) {
      raw->DestroyColumnFamilyHandle(h);
    }
    delete raw;
    Open();
  }

  // Adds to `batch` a second copy of stored event `seq` at `new_seq`, filed under its route.
  void AddCopyOfEvent(uint64_t seq, uint64_t new_seq, WriteBatch* batch) {
    auto event = Ok(store_->events().Get(seq));
    ASSERT_TRUE(event.has_value());
    event->mutable_envelope()->set_hub_seq(new_seq);
    store_->events().Add(batch, new_seq, event->SerializeAsString());
    store_->routes().Add(batch,
                         RoutePrefix(event->envelope().publisher_ods(),
                                     event->envelope().site_ods(), EventTypeName(*event)),
                         new_seq);
  }

  std::string FirstDedupKey() {
    auto event = Ok(store_->events().Get(10));
    EXPECT_TRUE(event.has_value());
    return DedupKey(event->envelope().publisher_ods(), event->envelope().event_id());
  }

  std::filesystem::path dir_;
  metrics::Registry metrics_;
  std::unique_ptr<Store> store_;
};

bool Mentions(const ConsistencyReport& r, const std::string& text) {
  for (const auto& p : r.problems) {
    if (p.find(text) != std::string::npos) {
      return true;
    }
  }
  return false;
}

TEST_F(ConsistencyTest, PipelineFilledStoreIsConsistent) {
  auto r = Check();
  EXPECT_TRUE(r.consistent()) << r.Summary() << "\n" << (r.problems.empty() ? "" : r.problems[0]);
  EXPECT_EQ(r.events, kEvents);
  EXPECT_EQ(r.dedup_keys, kEvents);
  EXPECT_EQ(r.routes, kEvents);
  EXPECT_GT(r.known_routes, 0u);
  EXPECT_EQ(r.cursors, 1u);
  EXPECT_EQ(r.audit_delivery_records, 1u);
  EXPECT_NE(r.Summary().find("consistent: events 300"), std::string::npos) << r.Summary();
}

TEST_F(ConsistencyTest, RetentionCutIsConsistentAndKeepsTheNewestEvent) {
  // Everything was received "now": a cutoff in the future would delete the whole log, but the
  // newest event stays so hub_seq cannot start again from 1 after a restart.
  auto deleted = store_->DeleteEventsBefore(ToUnixMillis(SystemClock::Instance().Now()) + 60'000);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(deleted.value(), kEvents - 1);
  EXPECT_EQ(Ok(store_->events().LastSeq()), kEvents);
  EXPECT_EQ(Ok(store_->events().FirstSeq()), kEvents);
  auto r = Check();
  EXPECT_TRUE(r.consistent()) << r.Summary() << "\n" << (r.problems.empty() ? "" : r.problems[0]);
  EXPECT_EQ(r.dedup_keys_below_cut, kEvents - 1);
  EXPECT_EQ(r.routes_below_cut, 0u) << "retention deletes the routes with the events";
}

TEST_F(ConsistencyTest, RemovedDedupKeyIsReported) {
  const std::string key = FirstDedupKey();
  DeleteRaw("dedup", key);
  auto r = Check();
  EXPECT_FALSE(r.consistent());
  EXPECT_EQ(r.problem_count, 1u) << r.Summary();
  EXPECT_TRUE(Mentions(r, "event 10: no dedup key")) << r.problems[0];
}

TEST_F(ConsistencyTest, MissingDedupKeyOfAnExpiredEventIsAllowed) {
  DeleteRaw("dedup", FirstDedupKey());
  ConsistencyOptions later;
  later.now_unix_ms = ToUnixMillis(SystemClock::Instance().Now()) + 402LL * 24 * 3600 * 1000;
  auto r = CheckConsistency(*store_, later);
  ASSERT_TRUE(r.ok());
  // 401 days on, the removed key may have expired; the cursor and audit rules do not change.
  EXPECT_TRUE(r.value().consistent()) << r.value().Summary() << "\n" << r.value().problems[0];
  EXPECT_EQ(r.value().dedup_keys_expired, 1u);
}

TEST_F(ConsistencyTest, ResendStoredAgainAfterTheWindowIsAllowedThenOnly) {
  // Past the dedup window the pipeline stores a resend again and its key moves to the new copy.
  const std::string key = FirstDedupKey();
  auto old_entry = Ok(store_->dedup().Lookup({key}))[0];
  ASSERT_TRUE(old_entry.has_value());
  WriteBatch batch;
  ASSERT_NO_FATAL_FAILURE(AddCopyOfEvent(10, kEvents + 1, &batch));
  store_->dedup().Add(&batch, key, DedupEntry{kEvents + 1, old_entry->hash, old_entry->day});
  ASSERT_TRUE(store_->Commit(&batch, true).ok());
  ConsistencyOptions later;
  later.now_unix_ms = ToUnixMillis(SystemClock::Instance().Now()) + 402LL * 24 * 3600 * 1000;
  auto r = CheckConsistency(*store_, later);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.value().consistent()) << r.value().Summary() << "\n" << r.value().problems[0];
  EXPECT_EQ(r.value().dedup_keys_expired, 1u);
  auto now = Check();
  EXPECT_TRUE(Mentions(now, "event 10: dedup key")) << now.Summary();
}

TEST_F(ConsistencyTest, DanglingRouteAndDedupKeyAreReported) {
  WriteBatch batch;
  store_->routes().Add(&batch, RoutePrefix("RXK", "RXK01", "activity.emergency_admission"),
                       kEvents + 5);
  DedupEntry entry{kEvents + 7, HashContent("x"), 20000};
  store_->dedup().Add(&batch, DedupKey("RXK", "ghost"), entry);
  ASSERT_TRUE(store_->Commit(&batch, true).ok());
  auto r = Check();
  EXPECT_FALSE(r.consistent());
  EXPECT_TRUE(Mentions(r, "hub_seq 305: no such event (dangling)")) << r.Summary();
  EXPECT_TRUE(Mentions(r, "points to hub_seq 307, which is not stored")) << r.Summary();
}

TEST_F(ConsistencyTest, RouteOutsideTheKnownRoutesIsReported) {
  auto event = Ok(store_->events().Get(20));
  ASSERT_TRUE(event.has_value());
  WriteBatch batch;
  store_->routes().Add(&batch, RoutePrefix("ZZZ", "ZZZ01", "activity.discharge"), 20);
  ASSERT_TRUE(store_->Commit(&batch, true).ok());
  auto r = Check();
  EXPECT_TRUE(Mentions(r, "not among the known routes")) << r.Summary();
  EXPECT_TRUE(Mentions(r, "the event there has another route")) << r.Summary();
}

TEST_F(ConsistencyTest, OverlappingRouteEntriesAreReported) {
  // One sequencer never writes these: a later entry of the route starting inside an earlier one.
  WriteBatch batch;
  const std::string route = RoutePrefix("RXK", "RXK01", "activity.emergency_admission");
  store_->routes().Add(&batch, route, std::vector<uint64_t>{kEvents + 1, kEvents + 9});
  store_->routes().Add(&batch, route, std::vector<uint64_t>{kEvents + 5});
  ASSERT_TRUE(store_->Commit(&batch, true).ok());
  auto r = Check();
  EXPECT_FALSE(r.consistent());
  EXPECT_TRUE(Mentions(r, "overlaps the route's entry before it")) << r.Summary();
}

TEST_F(ConsistencyTest, CursorBeyondTheEndIsReported) {
  ASSERT_TRUE(store_->cursors().Put("feed", kEvents + 1).ok());
  auto r = Check();
  EXPECT_EQ(r.problem_count, 1u) << r.Summary();
  EXPECT_TRUE(Mentions(r, "cursor feed = 301 is beyond the last stored hub_seq 300"))
      << (r.problems.empty() ? "" : r.problems[0]);
}

TEST_F(ConsistencyTest, EventStoredTwiceAndAuditBeyondTheEndAreReported) {
  // A second copy of event 10 at a new seq, with its route: what a lost dedup write would allow.
  WriteBatch batch;
  ASSERT_NO_FATAL_FAILURE(AddCopyOfEvent(10, kEvents + 1, &batch));
  ASSERT_TRUE(store_->Commit(&batch, true).ok());
  v1::AuditRecord audit;
  audit.set_at_unix_ms(2000);
  audit.set_kind("delivery");
  audit.set_subscription("feed");
  audit.set_from_seq(290);
  audit.set_to_seq(kEvents + 50);
  ASSERT_TRUE(store_->audit().Append(audit).ok());
  auto r = Check();
  EXPECT_TRUE(Mentions(r, "event 301: dedup key")) << r.Summary();
  EXPECT_TRUE(Mentions(r, "(event stored twice?)")) << r.Summary();
  EXPECT_TRUE(Mentions(r, "names hub_seq 290..350 (last stored 301)")) << r.Summary();
}

TEST_F(ConsistencyTest, DisclosureEntriesMustNameTheirDeliveryRecord) {
  // A delivery of events 10..20 filed under a patient, as the delivery path writes it: consistent.
  ASSERT_TRUE(store_->disclosures().EnsureKey().ok());
  auto hasher = store_->disclosures().Hasher();
  ASSERT_TRUE(hasher.ok()) << hasher.status().ToString();
  const std::string patient = hasher->ForNhsNumber("9434765919");
  v1::AuditRecord audit;
  audit.set_at_unix_ms(3000);
  audit.set_kind("delivery");
  audit.set_subscription("feed");
  audit.set_from_seq(10);
  audit.set_to_seq(20);
  const std::string key = store_->audit().NewKey(audit.at_unix_ms());
  WriteBatch batch;
  store_->audit().AddRecord(&batch, key, audit);
  DisclosureFilings filed;
  filed.Add(patient, 15, "");
  ASSERT_TRUE(store_->disclosures().File(&batch, key, filed).ok());
  ASSERT_TRUE(store_->Commit(&batch, true).ok());
  auto ok = Check();
  EXPECT_EQ(ok.problem_count, 0u) << ok.Summary();
  EXPECT_EQ(ok.disclosure_entries, 1u);

  // One outside its delivery's range, one naming no record at all.
  WriteBatch bad;
  DisclosureFilings outside;
  outside.Add(patient, 25, "");
  ASSERT_TRUE(store_->disclosures().File(&bad, key, outside).ok());
  ASSERT_TRUE(store_->Commit(&bad, true).ok());
  WriteBatch orphan;
  DisclosureFilings no_record;
  no_record.Add(patient, 12, "");
  ASSERT_TRUE(store_->disclosures().File(&orphan, store_->audit().NewKey(4000), no_record).ok());
  ASSERT_TRUE(store_->Commit(&orphan, true).ok());
  auto r = Check();
  EXPECT_EQ(r.problem_count, 2u) << r.Summary();
  EXPECT_TRUE(Mentions(r, "hub_seq 25 is outside its delivery's range 10..20")) << r.Summary();
  EXPECT_TRUE(Mentions(r, "hub_seq 12 names no delivery audit record")) << r.Summary();
}

}  // namespace
}  // namespace carehub::hub
