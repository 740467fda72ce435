// Store: the RocksDB layout the hub relies on, on a real database in a temp dir.
#include "carehub/hub/store.h"

#include <gtest/gtest.h>
#include <rocksdb/write_batch.h>

#include <filesystem>

#include "carehub/hub/ingest_pipeline.h"

namespace carehub::hub {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("carehub-store-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    auto store = Store::Open(StoreOptions{dir_});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Stores one event received at `received_ms`, filed under `route`.
  void Put(uint64_t seq, int64_t received_ms, const RouteKey& route) {
    v1::Event e;
    e.mutable_envelope()->set_event_id("e" + std::to_string(seq));
    e.mutable_envelope()->set_hub_seq(seq);
    e.mutable_envelope()->mutable_received_at()->set_seconds(received_ms / 1000);
    rocksdb::WriteBatch batch;
    store_->AddEvent(&batch, seq, e.SerializeAsString());
    store_->AddRouteById(&batch, RouteId(route.publisher_ods, route.site_ods, route.event_type),
                         seq);
    ASSERT_TRUE(store_->Commit(&batch, false).ok());
  }

  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, DedupLookupFindsOnlyWhatWasWritten) {
  rocksdb::WriteBatch batch;
  DedupEntry entry{42, HashContent("abc"), 20000};
  store_->AddDedup(&batch, Store::DedupKey("RXK", "MSG1"), entry);
  ASSERT_TRUE(store_->Commit(&batch, true).ok());
  auto found = store_->LookupDedup({Store::DedupKey("RXK", "MSG1"), Store::DedupKey("RXK", "MSG2"),
                                    Store::DedupKey("RR8", "MSG1")});
  ASSERT_TRUE(found[0].has_value());
  EXPECT_EQ(found[0]->hub_seq, 42u);
  EXPECT_EQ(found[0]->hash, entry.hash);
  EXPECT_EQ(found[0]->day, 20000u);
  EXPECT_FALSE(found[1].has_value());
  EXPECT_FALSE(found[2].has_value()) << "the key includes the publisher";
}

TEST_F(StoreTest, RouteScanReturnsOnlyThatRouteInOrder) {
  RouteKey narrow{"RCB", "RCB01", "activity.discharge"};
  RouteKey other{"RXK", "RXK01", "activity.discharge"};
  for (uint64_t seq = 1; seq <= 100; ++seq) {
    Put(seq, 1'000'000, seq % 10 == 0 ? narrow : other);
  }
  auto seqs = store_->ScanRoute(narrow, 1, 100, 1000);
  ASSERT_EQ(seqs.size(), 10u);
  for (size_t i = 0; i < seqs.size(); ++i) {
    EXPECT_EQ(seqs[i], 10 * (i + 1));
  }
  EXPECT_EQ(store_->ScanRoute(narrow, 35, 70, 1000), (std::vector<uint64_t>{40, 50, 60, 70}));
  EXPECT_EQ(store_->ScanRoute(narrow, 1, 100, 3).size(), 3u);
}

TEST_F(StoreTest, RetentionDeletesWholeRangesBeforeTheCutoff) {
  RouteKey route{"RXK", "RXK01", "activity.ae_attendance"};
  rocksdb::WriteBatch batch;
  store_->AddKnownRoute(&batch, route);
  ASSERT_TRUE(store_->Commit(&batch, false).ok());
  store_->NoteRoutesCommitted({route});
  for (uint64_t seq = 1; seq <= 50; ++seq) {
    Put(seq, static_cast<int64_t>(seq) * 1000, route);  // received at seq seconds
  }
  EXPECT_EQ(store_->SeqAtTime(20'500), 21u);
  auto deleted = store_->DeleteEventsBefore(20'500);
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  EXPECT_EQ(deleted.value(), 20u);
  EXPECT_EQ(store_->FirstSeq(), 21u);
  EXPECT_EQ(store_->LastSeq(), 50u);
  EXPECT_FALSE(store_->GetEvent(20).has_value());
  EXPECT_TRUE(store_->GetEvent(21).has_value());
  auto routed = store_->ScanRoute(route, 1, 50, 1000);
  ASSERT_FALSE(routed.empty());
  EXPECT_EQ(routed.front(), 21u) << "route entries of deleted events go too";
}

TEST_F(StoreTest, CursorsAndAuditRoundTrip) {
  EXPECT_FALSE(store_->GetCursor("feed").has_value());
  ASSERT_TRUE(store_->PutCursor("feed", 77).ok());
  EXPECT_EQ(store_->GetCursor("feed").value(), 77u);
  for (int i = 0; i < 5; ++i) {
    v1::AuditRecord a;
    a.set_at_unix_ms(1000 * (i + 1));
    a.set_kind("delivery");
    a.set_subscriber(i % 2 ? "odd" : "even");
    ASSERT_TRUE(store_->AppendAudit(a).ok());
  }
  EXPECT_EQ(store_->QueryAudit("even", 0, INT64_MAX, 100).size(), 3u);
  EXPECT_EQ(store_->QueryAudit("", 2000, 4000, 100).size(), 3u);
}

TEST(StoreHeadroom, RefusesWritesThatWouldEatTheReserve) {
  auto dir = std::filesystem::temp_directory_path() /
             ("carehub-store-headroom-" + std::to_string(::getpid()));
  StoreOptions options{dir};
  options.min_free_disk_bytes = UINT64_MAX / 4;  // more than any disk has
  auto store = Store::Open(options);
  ASSERT_TRUE(store.ok());
  Status s = store.value()->CheckHeadroom(1);
  EXPECT_EQ(s.code(), "store_full");
  EXPECT_EQ(store.value()->Probe().code(), "store_full");
  store.value().reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace carehub::hub
