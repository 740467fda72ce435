// DisclosureIndex: filings go to the journal in the delivery's write and reach the run index in
// the background; a report sees every committed filing wherever it is (store/disclosure_index.h).
// Real RocksDB in a temp dir; runs are added by IndexPending() unless a test starts the
// background runs.
#include "carehub/hub/store/disclosure_index.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "carehub/hub/store.h"
#include "store_test_util.h"

namespace carehub::hub {
namespace {

using testing::FreshTestDir;
using testing::Ok;

class DisclosureIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir("carehub-disclosure-index");
    Open();
    ASSERT_TRUE(store_->disclosures().EnsureKey().ok());
    auto hasher = store_->disclosures().Hasher();
    ASSERT_TRUE(hasher.ok()) << hasher.status().ToString();
    alice_ = hasher->ForNhsNumber("9434765919");
    bob_ = hasher->ForNhsNumber("9990000018");
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // (Re)opens the store at dir_ with no background runs: each test adds runs itself.
  void Open(const std::filesystem::path& dir = {}) {
    store_.reset();
    StoreOptions options{dir.empty() ? dir_ : dir};
    options.disclosure_run_interval = std::chrono::milliseconds(0);
    auto store = Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  // Files `seqs` under `patient` as one delivery batch audited at `at_ms`, as the delivery path
  // does (audit record and journal record in one write); returns the audit key.
  std::string Deliver(const std::string& patient, int64_t at_ms, std::vector<uint64_t> seqs,
                      const std::string& agreement = "DSA-0001") {
    v1::AuditRecord audit;
    audit.set_at_unix_ms(at_ms);
    audit.set_kind("delivery");
    audit.set_from_seq(seqs.front());
    audit.set_to_seq(seqs.back());
    const std::string key = store_->audit().NewKey(at_ms);
    DisclosureFilings filings;
    for (uint64_t seq : seqs) {
      std::string entry;
      AppendDisclosureEntry(&entry, agreement, "identifiable", "activity.ae_attendance", "RXK",
                            "e" + std::to_string(seq));
      filings.Add(patient, seq, entry);
    }
    WriteBatch batch;
    store_->audit().AddRecord(&batch, key, audit);
    EXPECT_TRUE(store_->disclosures().File(&batch, key, filings).ok());
    EXPECT_TRUE(store_->Commit(&batch, false).ok());
    return key;
  }

  // Takes `seqs` of the batch audited under `audit_key` out again, as RecordNotSent does.
  void Retract(const std::string& patient, const std::string& audit_key,
               std::vector<uint64_t> seqs) {
    DisclosureFilings filings;
    for (uint64_t seq : seqs) {
      filings.Add(patient, seq, "");
    }
    WriteBatch batch;
    EXPECT_TRUE(store_->disclosures().Retract(&batch, audit_key, filings).ok());
    EXPECT_TRUE(store_->Commit(&batch, false).ok());
  }

  std::vector<uint64_t> SeqsOf(const std::string& patient, size_t limit = 1000) {
    std::vector<uint64_t> out;
    for (const auto& f : Ok(store_->disclosures().ForPatient(patient, 0, INT64_MAX, limit))) {
      out.push_back(f.hub_seq);
    }
    return out;
  }

  uint64_t Indexed() { return store_->disclosures().Stats().indexed_to; }

  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
  std::string alice_;
  std::string bob_;
};

TEST_F(DisclosureIndexTest, FilingsAreFoundInTheJournalThenInTheRunIndex) {
  Deliver(alice_, 1000, {1, 2});
  Deliver(bob_, 1100, {3});
  Deliver(alice_, 1200, {4});
  EXPECT_EQ(store_->disclosures().Stats().journal_last, 3u);
  EXPECT_EQ(Indexed(), 0u);
  EXPECT_EQ(SeqsOf(alice_), (std::vector<uint64_t>{1, 2, 4})) << "read from the journal";
  EXPECT_EQ(SeqsOf(bob_), (std::vector<uint64_t>{3}));

  // Runs of at most ~one record here: several runs, each its own table file.
  EXPECT_EQ(Ok(store_->disclosures().IndexPending(/*run_filings=*/1)), 3u);
  EXPECT_EQ(Indexed(), 3u);
  EXPECT_EQ(store_->disclosures().Stats().runs, 3u);
  EXPECT_EQ(SeqsOf(alice_), (std::vector<uint64_t>{1, 2, 4})) << "read from the run index";
  EXPECT_EQ(SeqsOf(bob_), (std::vector<uint64_t>{3}));
  EXPECT_EQ(Ok(store_->disclosures().IndexPending()), 0u) << "nothing left to index";

  // Half in the run index, half in the journal: one list, oldest first, the limit over both.
  Deliver(alice_, 1300, {5});
  Deliver(alice_, 1400, {6});
  EXPECT_EQ(SeqsOf(alice_), (std::vector<uint64_t>{1, 2, 4, 5, 6}));
  EXPECT_EQ(SeqsOf(alice_, 4), (std::vector<uint64_t>{1, 2, 4, 5}));
  auto window = Ok(store_->disclosures().ForPatient(alice_, 1200, 1300, 10));
  ASSERT_EQ(window.size(), 2u);
  EXPECT_EQ(window[0].hub_seq, 4u);
  EXPECT_EQ(window[1].hub_seq, 5u);
  EXPECT_EQ(window[1].at_unix_ms, 1300);
  EXPECT_EQ(window[1].entry.event_id(), "e5");
  auto one = Ok(store_->disclosures().ForPatient(alice_, 0, INT64_MAX, 10, /*hub_seq=*/2));
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].entry.agreement(), "DSA-0001");
}

TEST_F(DisclosureIndexTest, ARetractionTakesOutAFilingWhereverItIs) {
  const std::string indexed = Deliver(alice_, 1000, {1, 2});
  ASSERT_TRUE(store_->disclosures().IndexPending().ok());
  // Filed in a run already, retracted in the journal: hidden before and after the next run.
  Retract(alice_, indexed, {1, 2});
  EXPECT_TRUE(SeqsOf(alice_).empty());
  ASSERT_TRUE(store_->disclosures().IndexPending().ok());
  EXPECT_TRUE(SeqsOf(alice_).empty());

  // Filed and retracted in the same run.
  const std::string both = Deliver(alice_, 2000, {3});
  Retract(alice_, both, {3});
  const std::string kept = Deliver(alice_, 2100, {4});
  EXPECT_EQ(SeqsOf(alice_), (std::vector<uint64_t>{4}));
  ASSERT_TRUE(store_->disclosures().IndexPending().ok());
  EXPECT_EQ(SeqsOf(alice_), (std::vector<uint64_t>{4}));

  // The same again after a restart: the runs are what is on disk.
  Open();
  EXPECT_EQ(SeqsOf(alice_), (std::vector<uint64_t>{4}));
  EXPECT_EQ(Indexed(), store_->disclosures().Stats().journal_last);
}

TEST_F(DisclosureIndexTest, AReportFindsFilingsInRunsInSortedSegmentsAndInTheJournal) {
  DisclosureIndex& index = store_->disclosures();
  const std::string in_run = Deliver(alice_, 1000, {1, 2});  // journal record 1
  ASSERT_TRUE(index.IndexPending().ok());
  const std::string sorted = Deliver(alice_, 1100, {3});  // 2
  Deliver(bob_, 1150, {4});                               // 3
  Deliver(alice_, 1200, {5});                             // 4
  ASSERT_TRUE(index.SortJournal().ok());
  EXPECT_EQ(index.Stats().waiting, 3u);
  EXPECT_EQ(Indexed(), 1u);
  Deliver(alice_, 1300, {6});    // 5
  Retract(alice_, in_run, {2});  // 6: takes out a filing in a run, from a segment
  ASSERT_TRUE(index.SortJournal().ok());
  EXPECT_EQ(index.Stats().waiting, 5u) << "two segments";
  Retract(alice_, sorted, {3});  // 7: takes out a filing in a segment, from the journal

  auto check = [&](const char* where) {
    EXPECT_EQ(SeqsOf(alice_), (std::vector<uint64_t>{1, 5, 6})) << where;
    EXPECT_EQ(SeqsOf(bob_), (std::vector<uint64_t>{4})) << where;
    EXPECT_EQ(SeqsOf(alice_, 2), (std::vector<uint64_t>{1, 5})) << where;
    auto window = Ok(store_->disclosures().ForPatient(alice_, 1150, 1250, 10));
    ASSERT_EQ(window.size(), 1u) << where;
    EXPECT_EQ(window[0].hub_seq, 5u) << where;
    EXPECT_EQ(window[0].entry.event_id(), "e5") << where;
    EXPECT_TRUE(
        Ok(store_->disclosures().ForPatient(alice_, 0, INT64_MAX, 10, /*hub_seq=*/4)).empty())
        << where;
  };
  check("run, segments and journal");

  // One run merges the waiting segments and what is left of the journal.
  const uint64_t runs = index.Stats().runs;
  EXPECT_EQ(Ok(index.IndexPending()), 6u);
  EXPECT_EQ(index.Stats().runs, runs + 1);
  EXPECT_EQ(index.Stats().waiting, 0u);
  EXPECT_EQ(Indexed(), 7u);
  check("runs");
  Open();
  check("reopened");
}

TEST_F(DisclosureIndexTest, AnIndexThatIsGoneIsRebuiltFromTheJournal) {
  Deliver(alice_, 1000, {1});
  Deliver(bob_, 1100, {2});
  ASSERT_TRUE(store_->disclosures().IndexPending().ok());
  store_.reset();
  std::filesystem::remove_all(dir_ / "disclosure-index");
  Open();
  EXPECT_EQ(Indexed(), 0u);
  EXPECT_EQ(SeqsOf(alice_), (std::vector<uint64_t>{1})) << "from the journal meanwhile";
  EXPECT_EQ(Ok(store_->disclosures().IndexPending()), 2u);
  EXPECT_EQ(SeqsOf(alice_), (std::vector<uint64_t>{1}));
  EXPECT_EQ(SeqsOf(bob_), (std::vector<uint64_t>{2}));
}

TEST_F(DisclosureIndexTest, AnIndexOfAnotherJournalIsDiscardedAndRebuilt) {
  // Store A files alice's event 1 and indexes it. Store B (what a full copy from another
  // primary brings) files bob's event 7 under the same journal number. A's run index left in
  // B's directory must not report alice, nor hide bob.
  Deliver(alice_, 1000, {1});
  ASSERT_TRUE(store_->disclosures().IndexPending().ok());
  const auto other = FreshTestDir("carehub-disclosure-index-other");
  store_.reset();
  Open(other);
  ASSERT_TRUE(store_->disclosures().EnsureKey().ok());
  auto hasher_b = store_->disclosures().Hasher();
  ASSERT_TRUE(hasher_b.ok());
  const std::string bob_in_b = hasher_b->ForNhsNumber("9990000018");
  const std::string alice_in_b = hasher_b->ForNhsNumber("9434765919");
  Deliver(bob_in_b, 1000, {7});
  store_.reset();
  std::filesystem::remove_all(other / "disclosure-index");
  std::filesystem::copy(dir_ / "disclosure-index", other / "disclosure-index",
                        std::filesystem::copy_options::recursive);
  Open(other);
  EXPECT_EQ(store_->disclosures().Stats().rebuilds, 1u);
  EXPECT_TRUE(SeqsOf(alice_in_b).empty());
  EXPECT_TRUE(SeqsOf(alice_).empty());
  EXPECT_EQ(SeqsOf(bob_in_b), (std::vector<uint64_t>{7}));
  ASSERT_TRUE(store_->disclosures().IndexPending().ok());
  EXPECT_TRUE(SeqsOf(alice_).empty());
  EXPECT_EQ(SeqsOf(bob_in_b), (std::vector<uint64_t>{7}));
  store_.reset();
  std::filesystem::remove_all(other);
}

TEST_F(DisclosureIndexTest, JournalNumbersFollowTheLastCommittedRecord) {
  Deliver(alice_, 1000, {1});
  Deliver(alice_, 1000, {2});
  Open();  // numbers are read from the store, not kept in memory
  Deliver(alice_, 1000, {3});
  EXPECT_EQ(store_->disclosures().Stats().journal_last, 3u);
  EXPECT_EQ(SeqsOf(alice_), (std::vector<uint64_t>{1, 2, 3}));
  // A batch with nothing to file writes no journal record.
  WriteBatch batch;
  ASSERT_TRUE(store_->disclosures().File(&batch, store_->audit().NewKey(1), {}).ok());
  EXPECT_EQ(batch.Count(), 0u);
}

// Files one event of one patient as a delivery batch does, and commits it.
void FileOneFiling(Store& store, uint64_t hub_seq = 1) {
  ASSERT_TRUE(store.disclosures().EnsureKey().ok());
  auto hasher = store.disclosures().Hasher();
  ASSERT_TRUE(hasher.ok());
  DisclosureFilings filings;
  filings.Add(hasher->ForNhsNumber("9434765919"), hub_seq, "");
  WriteBatch batch;
  ASSERT_TRUE(store.disclosures().File(&batch, store.audit().NewKey(1000), filings).ok());
  ASSERT_TRUE(store.Commit(&batch, false).ok());
}

uint64_t Indexed(const Store& store) { return store.disclosures().Stats().indexed_to; }

// Waits until `done()`, or until a bound far longer than any interval here has passed (a loaded
// machine does not fail the tests).
template <typename Done>
void WaitUntil(Done done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// The run index's last journal number once it reaches `number` (or the bound has passed).
uint64_t WaitIndexedTo(const Store& store, uint64_t number) {
  WaitUntil([&] { return Indexed(store) >= number; });
  return Indexed(store);
}

// A store whose runs are added in the background, in a directory of the test's own.
class DisclosureIndexBackground : public ::testing::Test {
 protected:
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // (Re)opens the store with runs every `interval` (0: none in the background).
  void OpenWithRuns(std::chrono::milliseconds interval) {
    store_.reset();
    StoreOptions options{dir_};
    options.disclosure_run_interval = interval;
    auto opened = Store::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }

  const std::filesystem::path dir_ = FreshTestDir("carehub-disclosure-background");
  std::unique_ptr<Store> store_;
};

TEST_F(DisclosureIndexBackground, RunsAreAddedWithoutBeingAsked) {
  ASSERT_NO_FATAL_FAILURE(OpenWithRuns(std::chrono::milliseconds(20)));
  Store& store = *store_;
  FileOneFiling(store);
  EXPECT_EQ(WaitIndexedTo(store, 1), 1u);
  EXPECT_GE(store.disclosures().Stats().runs, 1u);
}

TEST_F(DisclosureIndexBackground, NewFilingsAreSortedBetweenRuns) {
  // An interval far longer than the test: the filing waits sorted in memory, and is reported.
  ASSERT_NO_FATAL_FAILURE(OpenWithRuns(std::chrono::hours(1)));
  Store& store = *store_;
  // The run at open may take a filing made while it starts; one filed after it waits, sorted.
  FileOneFiling(store, 1);
  WaitUntil([&] { return store.disclosures().Stats().waiting + Indexed(store) >= 1; });
  const uint64_t indexed = Indexed(store);
  if (indexed == 1) {
    FileOneFiling(store, 2);
  }
  WaitUntil([&] { return store.disclosures().Stats().waiting >= 1; });
  EXPECT_EQ(store.disclosures().Stats().waiting, 1u);
  EXPECT_EQ(Indexed(store), indexed) << "no run but the one at open";
  auto hasher = store.disclosures().Hasher();
  ASSERT_TRUE(hasher.ok());
  auto found = store.disclosures().ForPatient(hasher->ForNhsNumber("9434765919"), 0, INT64_MAX, 10);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_EQ(found->size(), indexed + 1);
  EXPECT_EQ(found->back().hub_seq, indexed + 1);
}

TEST_F(DisclosureIndexBackground, AStoreIndexesWhatWaitsWhenItOpens) {
  // Filed with no background runs, then reopened with an interval far longer than the test: the
  // waiting record is indexed at open, not an interval later.
  ASSERT_NO_FATAL_FAILURE(OpenWithRuns(std::chrono::milliseconds(0)));
  FileOneFiling(*store_);
  EXPECT_EQ(Indexed(*store_), 0u);
  ASSERT_NO_FATAL_FAILURE(OpenWithRuns(std::chrono::hours(1)));
  EXPECT_EQ(WaitIndexedTo(*store_, 1), 1u);
}

}  // namespace
}  // namespace carehub::hub
