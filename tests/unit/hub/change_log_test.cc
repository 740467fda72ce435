// The store's change log (store/change_log.h), what replication ships: on real RocksDB stores in
// temp dirs, a follower that applies a primary's changes holds the same records at the same
// positions; a change out of order is refused; the log can be read back from the write-ahead log
// (also from inside a change); epochs record forks; a follower refuses its own parts' writes.
#include "carehub/hub/store/change_log.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "carehub/hub/store.h"
#include "carehub/hub/store_compare.h"
#include "store_test_util.h"

namespace carehub::hub {
namespace {

using testing::FreshTestDir;
using testing::Ok;

struct Captured {
  uint64_t first;
  uint64_t last;
  std::string data;
};

class ChangeLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    primary_dir_ = FreshTestDir("carehub-changelog-primary");
    follower_dir_ = FreshTestDir("carehub-changelog-follower");
    StoreOptions p{primary_dir_};
    p.wal_archive_bytes = 64ull << 20;
    primary_ = Ok(Store::Open(p));
    StoreOptions f{follower_dir_};
    f.follower = true;
    follower_ = Ok(Store::Open(f));
    primary_->changes().SetObserver([this](uint64_t first, uint64_t last, std::string_view data) {
      captured_.push_back({first, last, std::string(data)});
    });
  }
  void TearDown() override {
    primary_.reset();
    follower_.reset();
    std::filesystem::remove_all(primary_dir_);
    std::filesystem::remove_all(follower_dir_);
  }

  // An event, its route and an audit record and a cursor: the kinds of write the hub makes.
  void Write(uint64_t seq) {
    v1::Event e;
    e.mutable_envelope()->set_event_id("e" + std::to_string(seq));
    e.mutable_envelope()->set_hub_seq(seq);
    WriteBatch batch;
    primary_->events().Add(&batch, seq, e.SerializeAsString());
    primary_->routes().Add(&batch, RoutePrefix(RouteKey{"RXK", "RXK01", "activity"}), seq);
    ASSERT_TRUE(primary_->Commit(&batch, false).ok());
    ASSERT_TRUE(primary_->cursors().Put("feed", seq).ok());
    v1::AuditRecord a;
    a.set_at_unix_ms(static_cast<int64_t>(seq));
    a.set_kind("delivery");
    ASSERT_TRUE(primary_->audit().Append(a).ok());
  }

  std::filesystem::path primary_dir_, follower_dir_;
  std::unique_ptr<Store> primary_, follower_;
  std::vector<Captured> captured_;
};

TEST_F(ChangeLogTest, AFollowerApplyingEveryChangeHoldsTheSameStore) {
  for (uint64_t s = 1; s <= 50; ++s) {
    Write(s);
  }
  ASSERT_EQ(captured_.size(), 150u);  // every write, each with its own positions, in order
  uint64_t expect = 1;
  for (const auto& c : captured_) {
    ASSERT_EQ(c.first, expect);
    expect = c.last + 1;
    ASSERT_TRUE(follower_->changes().Apply(Change{c.first, c.last, c.data}, false).ok());
  }
  EXPECT_EQ(follower_->changes().Position(), primary_->changes().Position());
  primary_.reset();
  follower_.reset();
  auto cmp = Ok(CompareStores(primary_dir_, follower_dir_));
  EXPECT_TRUE(cmp.equal) << cmp.first_difference;
  EXPECT_GT(cmp.records, 100u);
}

TEST_F(ChangeLogTest, AChangeOutOfOrderIsRefusedAndNothingIsApplied) {
  Write(1);
  Write(2);
  // Skip the first change: a gap.
  Status s = follower_->changes().Apply(
      Change{captured_[1].first, captured_[1].last, captured_[1].data}, false);
  EXPECT_EQ(s.code(), "replication_out_of_order") << s.ToString();
  EXPECT_EQ(follower_->changes().Position(), 0u);
  // Positions that lie about the batch's size are refused too.
  s = follower_->changes().Apply(Change{1, 99, captured_[0].data}, false);
  EXPECT_EQ(s.code(), "replication_out_of_order") << s.ToString();
}

TEST_F(ChangeLogTest, TheLogReadsBackFromTheWriteAheadLogAlsoFromInsideAChange) {
  for (uint64_t s = 1; s <= 20; ++s) {
    Write(s);
  }
  // From the start: exactly the changes the observer saw.
  std::vector<Change> read;
  ASSERT_TRUE(primary_->changes()
                  .ReadSince(1, 1 << 30,
                             [&](Change c) {
                               read.push_back(std::move(c));
                               return true;
                             })
                  .ok());
  ASSERT_EQ(read.size(), captured_.size());
  for (size_t i = 0; i < read.size(); ++i) {
    EXPECT_EQ(read[i].first, captured_[i].first);
    EXPECT_EQ(read[i].data, captured_[i].data);
  }
  // From the second record of the first event batch (event + route: 2 records): cut to begin there.
  ASSERT_EQ(captured_[0].last - captured_[0].first, 1u);
  std::vector<Change> tail;
  ASSERT_TRUE(primary_->changes()
                  .ReadSince(2, 1 << 30,
                             [&](Change c) {
                               tail.push_back(std::move(c));
                               return false;  // just the first
                             })
                  .ok());
  ASSERT_EQ(tail.size(), 1u);
  EXPECT_EQ(tail[0].first, 2u);
  EXPECT_EQ(tail[0].last, 2u);
  // Past the end: nothing, and no error.
  size_t none = 0;
  EXPECT_TRUE(primary_->changes()
                  .ReadSince(primary_->changes().Position() + 1, 1 << 20,
                             [&](Change) {
                               ++none;
                               return true;
                             })
                  .ok());
  EXPECT_EQ(none, 0u);
}

TEST_F(ChangeLogTest, EpochsRecordWhereEachBegan) {
  EXPECT_EQ(Ok(primary_->changes().CurrentEpoch()), 0u);
  Write(1);
  const uint64_t fork = primary_->changes().Position();
  EXPECT_EQ(Ok(primary_->changes().BeginEpoch()), 1u);
  Write(2);
  EXPECT_EQ(Ok(primary_->changes().BeginEpoch()), 2u);
  auto epochs = Ok(primary_->changes().Epochs());
  ASSERT_EQ(epochs.size(), 2u);
  EXPECT_EQ(epochs[0].number, 1u);
  EXPECT_EQ(epochs[0].fork, fork);
  EXPECT_GT(epochs[1].fork, fork);
}

TEST_F(ChangeLogTest, AFollowerRefusesWritesOfItsOwn) {
  EXPECT_EQ(follower_->cursors().Put("feed", 1).code(), "not_primary");
  v1::AuditRecord a;
  a.set_kind("x");
  EXPECT_EQ(follower_->audit().Append(a).code(), "not_primary");
  EXPECT_EQ(follower_->changes().Position(), 0u);
}

TEST_F(ChangeLogTest, ACheckpointOpensAtItsPosition) {
  for (uint64_t s = 1; s <= 10; ++s) {
    Write(s);
  }
  const auto dir = FreshTestDir("carehub-changelog-checkpoint");
  const uint64_t position = Ok(primary_->changes().Checkpoint(dir));
  EXPECT_EQ(position, primary_->changes().Position());
  StoreOptions o{dir};
  o.follower = true;
  auto copy = Ok(Store::Open(o));
  EXPECT_EQ(copy->changes().Position(), position);
  copy.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace carehub::hub
