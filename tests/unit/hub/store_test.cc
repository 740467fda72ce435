// Store: the RocksDB layout the hub relies on, on a real database in a temp dir.
#include "carehub/hub/store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/metadata.h>
#include <rocksdb/perf_context.h>
#include <rocksdb/perf_level.h>
#include <rocksdb/table_properties.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "store/database.h"
#include "store_test_util.h"

namespace carehub::hub {
namespace {

using testing::EnvelopeLast;
using testing::FreshTestDir;
using testing::Ok;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir("carehub-store-test");
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
    WriteBatch batch;
    store_->events().Add(&batch, seq, e.SerializeAsString());
    store_->routes().Add(&batch, RoutePrefix(route), seq);
    ASSERT_TRUE(store_->Commit(&batch, false).ok());
  }

  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, DedupLookupFindsOnlyWhatWasWritten) {
  WriteBatch batch;
  DedupEntry entry{42, HashContent("abc"), 20000};
  store_->dedup().Add(&batch, DedupKey("RXK", "MSG1"), entry);
  ASSERT_TRUE(store_->Commit(&batch, true).ok());
  auto found = Ok(store_->dedup().Lookup(
      {DedupKey("RXK", "MSG1"), DedupKey("RXK", "MSG2"), DedupKey("RR8", "MSG1")}));
  ASSERT_EQ(found.size(), 3u);
  ASSERT_TRUE(found[0].has_value());
  EXPECT_EQ(found[0]->hub_seq, 42u);
  EXPECT_EQ(found[0]->hash, entry.hash);
  EXPECT_EQ(found[0]->day, 20000u);
  EXPECT_FALSE(found[1].has_value());
  EXPECT_FALSE(found[2].has_value()) << "the key includes the publisher";
}

TEST_F(StoreTest, DedupLookupAnswersEachKeyWhereItWasAsked) {
  // Lookup sorts the keys for RocksDB and must put each answer back at its key's place: keys in
  // no order, written and not, one asked twice.
  WriteBatch batch;
  for (uint64_t i = 0; i < 300; i += 2) {
    store_->dedup().Add(&batch, DedupKey("RXK", "id-" + std::to_string(i)),
                        DedupEntry{1000 + i, HashContent(std::to_string(i)), 20000});
  }
  ASSERT_TRUE(store_->Commit(&batch, true).ok());
  std::vector<uint64_t> asked;
  for (uint64_t i = 0; i < 300; ++i) {
    asked.push_back((i * 7919) % 300);  // a permutation of 0..299
  }
  asked.push_back(asked.front());
  std::vector<std::string> keys;
  for (uint64_t i : asked) {
    keys.push_back(DedupKey("RXK", "id-" + std::to_string(i)));
  }
  auto found = Ok(store_->dedup().Lookup(keys));
  ASSERT_EQ(found.size(), keys.size());
  for (size_t k = 0; k < keys.size(); ++k) {
    if (asked[k] % 2 == 0) {
      ASSERT_TRUE(found[k].has_value()) << asked[k];
      EXPECT_EQ(found[k]->hub_seq, 1000 + asked[k]);
    } else {
      EXPECT_FALSE(found[k].has_value()) << asked[k];
    }
  }
}

TEST_F(StoreTest, DedupLookupCostCountsBlocksReadFromFilesOnly) {
  // 2,000 keys in one file (flushed when the store closes), then a fresh store: an empty block
  // cache, and the file's index and filter read when it was opened.
  WriteBatch batch;
  for (uint64_t i = 0; i < 2000; ++i) {
    store_->dedup().Add(&batch, DedupKey("RXK", "id-" + std::to_string(100000 + i)),
                        DedupEntry{i + 1, HashContent(std::to_string(i)), 20000});
  }
  ASSERT_TRUE(store_->Commit(&batch, true).ok());
  store_.reset();
  store_ = Ok(Store::Open(StoreOptions{dir_}));
  // The hub's threads run with RocksDB's perf counters off (thread_setup.h); counting must turn
  // them on for the lookup only.
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);

  std::vector<std::string> fresh;
  for (int i = 0; i < 10; ++i) {
    fresh.push_back(DedupKey("RXK", "new-" + std::to_string(i)));
  }
  DedupLookupCost cost;
  auto found =
      Ok(store_->dedup().Lookup(std::vector<std::string_view>(fresh.begin(), fresh.end()), &cost));
  EXPECT_EQ(cost.keys, 10u);
  EXPECT_EQ(cost.found, 0u);
  EXPECT_EQ(cost.data_blocks_read, 0u) << "new keys are answered by the filter in memory";
  EXPECT_EQ(cost.index_blocks_read + cost.filter_blocks_read, 0u);

  // Keys far apart: each in its own data block, none of them cached yet.
  const std::vector<std::string> stored = {DedupKey("RXK", "id-100000"),
                                           DedupKey("RXK", "id-101999")};
  const std::vector<std::string_view> views(stored.begin(), stored.end());
  found = Ok(store_->dedup().Lookup(views, &cost));
  ASSERT_TRUE(found[0].has_value() && found[1].has_value());
  EXPECT_EQ(cost.found, 2u);
  EXPECT_EQ(cost.data_blocks_read, 2u);
  EXPECT_EQ(cost.index_blocks_read + cost.filter_blocks_read, 0u);
  EXPECT_GT(cost.elapsed.count(), 0);
  EXPECT_EQ(rocksdb::GetPerfLevel(), rocksdb::PerfLevel::kDisable);

  // The same keys again come from the block cache: no block read.
  found = Ok(store_->dedup().Lookup(views, &cost));
  EXPECT_EQ(cost.found, 2u);
  EXPECT_EQ(cost.data_blocks_read, 0u);
}

TEST_F(StoreTest, RouteScanReturnsOnlyThatRouteInOrder) {
  RouteKey narrow{"RCB", "RCB01", "activity.discharge"};
  RouteKey other{"RXK", "RXK01", "activity.discharge"};
  for (uint64_t seq = 1; seq <= 100; ++seq) {
    Put(seq, 1'000'000, seq % 10 == 0 ? narrow : other);
  }
  auto seqs = Ok(store_->routes().Scan(narrow, 1, 100, 1000));
  ASSERT_EQ(seqs.size(), 10u);
  for (size_t i = 0; i < seqs.size(); ++i) {
    EXPECT_EQ(seqs[i], 10 * (i + 1));
  }
  EXPECT_EQ(Ok(store_->routes().Scan(narrow, 35, 70, 1000)),
            (std::vector<uint64_t>{40, 50, 60, 70}));
  EXPECT_EQ(Ok(store_->routes().Scan(narrow, 1, 100, 3)).size(), 3u);
}

TEST_F(StoreTest, RetentionDeletesWholeRangesBeforeTheCutoff) {
  RouteKey route{"RXK", "RXK01", "activity.ae_attendance"};
  WriteBatch batch;
  store_->routes().AddKnown(&batch, route);
  ASSERT_TRUE(store_->Commit(&batch, false).ok());
  store_->routes().NoteCommitted({route});
  for (uint64_t seq = 1; seq <= 50; ++seq) {
    Put(seq, static_cast<int64_t>(seq) * 1000, route);  // received at seq seconds
  }
  EXPECT_EQ(Ok(store_->events().SeqAtTime(20'500)), 21u);
  auto deleted = store_->DeleteEventsBefore(20'500);
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  EXPECT_EQ(deleted.value(), 20u);
  EXPECT_EQ(Ok(store_->events().FirstSeq()), 21u);
  EXPECT_EQ(Ok(store_->events().LastSeq()), 50u);
  EXPECT_FALSE(Ok(store_->events().Get(20)).has_value());
  EXPECT_TRUE(Ok(store_->events().Get(21)).has_value());
  auto routed = Ok(store_->routes().Scan(route, 1, 50, 1000));
  ASSERT_FALSE(routed.empty());
  EXPECT_EQ(routed.front(), 21u) << "route entries of deleted events go too";
}

// Store format 2: an entry per route and batch. Readers must find seqs inside an entry whatever
// bounds they are given, and read format 1's one-event entries the same.
TEST_F(StoreTest, RouteEntriesOfSeveralSeqsReadAsThoseSeqs) {
  const RouteKey a{"RXK", "RXK01", "activity.discharge"};
  const RouteKey b{"RXK", "RXK01", "activity.ae_attendance"};
  WriteBatch batch;
  store_->routes().Add(&batch, RoutePrefix(a), std::vector<uint64_t>{3, 5, 9});
  store_->routes().Add(&batch, RoutePrefix(b), std::vector<uint64_t>{4, 6, 7, 8});
  store_->routes().Add(&batch, RoutePrefix(a), std::vector<uint64_t>{12, 13, 300});
  store_->routes().Add(&batch, RoutePrefix(a), 400);  // format 1's kind of entry
  ASSERT_TRUE(store_->Commit(&batch, false).ok());
  using Seqs = std::vector<uint64_t>;
  EXPECT_EQ(Ok(store_->routes().Scan(a, 1, 1000, 100)), (Seqs{3, 5, 9, 12, 13, 300, 400}));
  EXPECT_EQ(Ok(store_->routes().Scan(b, 1, 1000, 100)), (Seqs{4, 6, 7, 8}));
  EXPECT_EQ(Ok(store_->routes().Scan(a, 6, 12, 100)), (Seqs{9, 12}))
      << "from and to inside entries";
  EXPECT_EQ(Ok(store_->routes().Scan(a, 5, 5, 100)), (Seqs{5}));
  EXPECT_EQ(Ok(store_->routes().Scan(a, 10, 11, 100)), (Seqs{})) << "between two entries";
  EXPECT_EQ(Ok(store_->routes().Scan(a, 14, 299, 100)), (Seqs{})) << "inside one, holding none";
  EXPECT_EQ(Ok(store_->routes().Scan(a, 1, 1000, 4)), (Seqs{3, 5, 9, 12}));
  EXPECT_EQ(Ok(store_->routes().Scan(a, 301, 1000, 100)), (Seqs{400}));
  // Browsing back: newest first, below `below`, down to `from`.
  EXPECT_EQ(Ok(store_->routes().ScanBackward(a, 1, 1000, 100)), (Seqs{400, 300, 13, 12, 9, 5, 3}));
  EXPECT_EQ(Ok(store_->routes().ScanBackward(a, 6, 300, 100)), (Seqs{13, 12, 9}));
  EXPECT_EQ(Ok(store_->routes().ScanBackward(a, 1, 13, 2)), (Seqs{12, 9}));
  EXPECT_EQ(Ok(store_->routes().ScanBackward(a, 14, 300, 100)), (Seqs{}));
  EXPECT_EQ(Ok(store_->routes().ScanBackward(b, 5, 8, 100)), (Seqs{7, 6}));
}

TEST_F(StoreTest, OverlappingRouteEntriesAreReportedNotMerged) {
  // One sequencer never writes these; a reader that met them must not hand out seqs out of order.
  const RouteKey a{"RXK", "RXK01", "activity.discharge"};
  WriteBatch batch;
  store_->routes().Add(&batch, RoutePrefix(a), std::vector<uint64_t>{10, 30});
  store_->routes().Add(&batch, RoutePrefix(a), std::vector<uint64_t>{20, 25});
  ASSERT_TRUE(store_->Commit(&batch, false).ok());
  auto forward = store_->routes().Scan(a, 1, 100, 100);
  ASSERT_FALSE(forward.ok());
  EXPECT_EQ(forward.status().code(), "store_corrupt");
  auto backward = store_->routes().ScanBackward(a, 1, 100, 100);
  ASSERT_FALSE(backward.ok());
  EXPECT_EQ(backward.status().code(), "store_corrupt");
}

TEST_F(StoreTest, RetentionKeepsTheLaterSeqsOfARouteEntryAcrossTheCutoff) {
  RouteKey route{"RXK", "RXK01", "activity.ae_attendance"};
  WriteBatch batch;
  store_->routes().AddKnown(&batch, route);
  std::vector<uint64_t> seqs;
  for (uint64_t seq = 1; seq <= 50; ++seq) {
    v1::Event e;
    e.mutable_envelope()->set_event_id("e" + std::to_string(seq));
    e.mutable_envelope()->set_hub_seq(seq);
    e.mutable_envelope()->mutable_received_at()->set_seconds(static_cast<int64_t>(seq));
    store_->events().Add(&batch, seq, e.SerializeAsString());
    if (seq % 25 != 0) {
      seqs.push_back(seq);  // two entries: 1..24 (and 25 alone), 26..49 (and 50 alone)
    } else {
      store_->routes().Add(&batch, RoutePrefix(route), seqs);
      store_->routes().Add(&batch, RoutePrefix(route), seq);
      seqs.clear();
    }
  }
  ASSERT_TRUE(store_->Commit(&batch, false).ok());
  store_->routes().NoteCommitted({route});
  auto deleted = store_->DeleteEventsBefore(20'500);  // seqs 1..20
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  EXPECT_EQ(deleted.value(), 20u);
  std::vector<uint64_t> expected;
  for (uint64_t seq = 21; seq <= 50; ++seq) {
    expected.push_back(seq);
  }
  EXPECT_EQ(Ok(store_->routes().Scan(route, 1, 50, 1000)), expected);
  EXPECT_EQ(Ok(store_->routes().ScanBackward(route, 1, 51, 1000)).back(), 21u);
}

TEST_F(StoreTest, CursorsAndAuditRoundTrip) {
  EXPECT_FALSE(Ok(store_->cursors().Get("feed")).has_value());
  ASSERT_TRUE(store_->cursors().Put("feed", 77).ok());
  EXPECT_EQ(Ok(store_->cursors().Get("feed")), std::optional<uint64_t>(77));
  for (int i = 0; i < 5; ++i) {
    v1::AuditRecord a;
    a.set_at_unix_ms(1000 * (i + 1));
    a.set_kind("delivery");
    a.set_subscriber(i % 2 ? "odd" : "even");
    ASSERT_TRUE(store_->audit().Append(a).ok());
  }
  EXPECT_EQ(Ok(store_->audit().Query("even", 0, INT64_MAX, 100)).size(), 3u);
  EXPECT_EQ(Ok(store_->audit().Query("", 2000, 4000, 100)).size(), 3u);
}

TEST_F(StoreTest, AnUnsyncedWriteIsDurableOnlyAfterASyncThatStartedAfterIt) {
  v1::AuditRecord a;
  a.set_kind("delivery");
  ASSERT_TRUE(store_->audit().Append(a).ok());
  const uint64_t ticket = store_->WalSyncTicket();
  // Nothing syncs: the wait ends at its timeout with an error, never as "durable".
  Status waited = store_->WaitWalSynced(ticket, std::chrono::milliseconds(20));
  EXPECT_EQ(waited.code(), "store_sync_timeout") << waited.ToString();
  // A sync started after the write covers it, whether SyncWal or a synced commit.
  ASSERT_TRUE(store_->SyncWal().ok());
  EXPECT_TRUE(store_->WaitWalSynced(ticket, std::chrono::milliseconds(0)).ok());

  ASSERT_TRUE(store_->audit().Append(a).ok());
  const uint64_t second = store_->WalSyncTicket();
  EXPECT_GT(second, ticket);
  EXPECT_FALSE(store_->WaitWalSynced(second, std::chrono::milliseconds(0)).ok())
      << "the earlier sync cannot cover a later write";
  WriteBatch batch;
  store_->events().Add(&batch, 1, "event");
  ASSERT_TRUE(store_->Commit(&batch, /*sync=*/true).ok());
  EXPECT_TRUE(store_->WaitWalSynced(second, std::chrono::milliseconds(0)).ok());
}

// The delivery path writes disclosure entries encoded by hand (AppendDisclosureEntry): they must be
// the bytes protobuf writes, and read back through the index as entries written from a message.
TEST_F(StoreTest, HandEncodedDisclosureEntriesAreProtobufsBytesAndReadBack) {
  v1::DisclosureEntry entry;
  entry.set_agreement("DSA-0001");
  entry.set_field_level("pseudonymised");
  entry.set_event_type("activity.ae_attendance");
  entry.set_publisher_ods("RXK");
  entry.set_event_id(std::string(300, 'x'));  // a length that needs a two-byte varint
  std::string encoded;
  AppendDisclosureEntry(&encoded, entry.agreement(), entry.field_level(), entry.event_type(),
                        entry.publisher_ods(), entry.event_id());
  EXPECT_EQ(encoded, entry.SerializeAsString());
  std::string without_id;
  AppendDisclosureEntry(&without_id, "DSA-0001", "identifiable", "referral.bars", "RXK", "");
  v1::DisclosureEntry no_id;
  no_id.set_agreement("DSA-0001");
  no_id.set_field_level("identifiable");
  no_id.set_event_type("referral.bars");
  no_id.set_publisher_ods("RXK");
  EXPECT_EQ(without_id, no_id.SerializeAsString());

  ASSERT_TRUE(store_->disclosures().EnsureKey().ok());
  auto hasher = store_->disclosures().Hasher();
  ASSERT_TRUE(hasher.ok()) << hasher.status().ToString();
  const std::string patient = hasher->ForNhsNumber("9990000018");
  const std::string audit_key = store_->audit().NewKey(5000);
  WriteBatch batch;
  DisclosureFilings filings;
  filings.Add(patient, 7, encoded);
  filings.Add(patient, 8, entry.SerializeAsString());
  ASSERT_TRUE(store_->disclosures().File(&batch, audit_key, filings).ok());
  ASSERT_TRUE(store_->Commit(&batch, false).ok());
  auto found = Ok(store_->disclosures().ForPatient(patient, 0, 10'000, 10));
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].hub_seq, 7u);
  EXPECT_EQ(found[1].hub_seq, 8u);
  for (const auto& f : found) {
    EXPECT_EQ(f.audit_key, audit_key);
    EXPECT_EQ(f.entry.SerializeAsString(), entry.SerializeAsString());
  }
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

// StoreOptions::write_buffer_bytes sizes every family's memtable. Until store format 3 the
// disclosure family had a hash link-list memtable that allocated its buckets up front: at a fixed
// 8 MiB, a store with 4 MiB buffers aborted at open inside RocksDB ("Assertion
// `!ShouldScheduleFlush()' failed": a memtable full as it was made), found by fuzz_ingest_frame's
// store. Kept: small buffers must still open and take writes.
TEST(StoreWriteBuffer, SmallWriteBuffersOpenAndTakeWrites) {
  auto dir = std::filesystem::temp_directory_path() /
             ("carehub-store-small-buffer-" + std::to_string(::getpid()));
  for (size_t bytes : {size_t{1} << 20, size_t{4} << 20}) {
    StoreOptions options{dir};
    options.write_buffer_bytes = bytes;
    for (int open = 0; open < 2; ++open) {  // created, then reopened
      auto store = Store::Open(options);
      ASSERT_TRUE(store.ok()) << store.status().ToString();
      WriteBatch batch;
      store.value()->events().Add(&batch, open + 1, "event");
      ASSERT_TRUE(store.value()->Commit(&batch, /*sync=*/true).ok());
    }
    std::filesystem::remove_all(dir);
  }
}

// Per-level compression (database.cc): the merged families written per event (dedup and route
// indexes) flush into uncompressed level-0 files and compress from level 1 on (Snappy); the
// families whose keys only grow (event log, disclosure journal) compress every level alike (LZ4,
// Snappy) so that their level-0 files move down unrewritten (next test); the small families keep
// RocksDB's default, Snappy, at every level. Read from each table file's own properties, as
// RocksDB wrote them.
TEST(StoreCompression, MergedFamiliesFlushUncompressedAndCompressDeeper) {
  const auto dir = FreshTestDir("carehub-store-compression");
  auto opened = Database::Open(StoreOptions{dir});
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Database& database = *opened.value();
  rocksdb::DB* db = database.db();
  // The compression names of a family's table files, one per file.
  auto compressions = [&](Column column) {
    rocksdb::TablePropertiesCollection tables;
    EXPECT_TRUE(db->GetPropertiesOfAllTables(database.cf(column), &tables).ok());
    std::vector<std::string> names;
    for (const auto& [file, properties] : tables) {
      names.push_back(properties->compression_name);
    }
    return names;
  };
  const std::string value(400, 'x');  // compressible, so a compressing writer keeps its choice
  for (Column column :
       {Column::kEvents, Column::kDisclosureJournal, Column::kRoute, Column::kCursors}) {
    for (uint64_t key = 1; key <= 200; ++key) {
      ASSERT_TRUE(
          db->Put(rocksdb::WriteOptions(), database.cf(column), EncodeSeq(key), value).ok());
    }
    ASSERT_TRUE(db->Flush(rocksdb::FlushOptions(), database.cf(column)).ok());
  }
  using Names = std::vector<std::string>;
  EXPECT_EQ(compressions(Column::kEvents), Names{"LZ4"});
  EXPECT_EQ(compressions(Column::kDisclosureJournal), Names{"Snappy"});
  EXPECT_EQ(compressions(Column::kRoute), Names{"NoCompression"});
  EXPECT_EQ(compressions(Column::kCursors), Names{"Snappy"});

  // Compacted out of level 0, the merged family's data is compressed.
  ASSERT_TRUE(db->CompactRange(rocksdb::CompactRangeOptions(), database.cf(Column::kRoute), nullptr,
                               nullptr)
                  .ok());
  EXPECT_EQ(compressions(Column::kRoute), Names{"Snappy"});
  opened.value().reset();
  std::filesystem::remove_all(dir);
}

// The event log and the disclosure journal are keyed by numbers that only grow, so each level-0
// file holds keys past everything below it: RocksDB's own compactions move such files down the
// levels as they are. With an uncompressed level 0 over a compressed level 1 they were rewritten
// instead (RocksDB moves a file only between levels of the same compression): every event
// compressed once more, ~1.3-1.8 us of compaction CPU per event on the benchmark VM.
TEST(StoreCompression, AppendedFamiliesMoveLevelZeroFilesDownWithoutRewritingThem) {
  const auto dir = FreshTestDir("carehub-store-trivial-move");
  auto opened = Database::Open(StoreOptions{dir});
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Database& database = *opened.value();
  rocksdb::DB* db = database.db();
  const std::string value(400, 'x');
  for (Column column : {Column::kEvents, Column::kDisclosureJournal}) {
    // The table files of the family by level, by name.
    auto files = [&] {
      rocksdb::ColumnFamilyMetaData meta;
      db->GetColumnFamilyMetaData(database.cf(column), &meta);
      std::vector<std::set<std::string>> by_level;
      for (const auto& level : meta.levels) {
        by_level.emplace_back();
        for (const auto& file : level.files) {
          by_level.back().insert(file.name);
        }
      }
      return by_level;
    };
    // Level-0 files of disjoint, growing key ranges, up to RocksDB's level-0 compaction trigger.
    const int trigger = db->GetOptions(database.cf(column)).level0_file_num_compaction_trigger;
    std::set<std::string> flushed;
    uint64_t key = 0;
    for (int file = 0; file < trigger; ++file) {
      for (int i = 0; i < 200; ++i) {
        ASSERT_TRUE(
            db->Put(rocksdb::WriteOptions(), database.cf(column), EncodeSeq(++key), value).ok());
      }
      ASSERT_TRUE(db->Flush(rocksdb::FlushOptions(), database.cf(column)).ok());
      for (const auto& level : files()) {
        flushed.insert(level.begin(), level.end());
      }
    }
    ASSERT_EQ(flushed.size(), static_cast<size_t>(trigger));
    // RocksDB compacts level 0 in the background once it holds `trigger` files (here by moving
    // the oldest, a change of the manifest alone); this waits for that background thread, far
    // longer than it takes.
    auto compacted = [&] {
      uint64_t running = 1;
      return files()[0].size() < static_cast<size_t>(trigger) &&
             db->GetIntProperty(database.cf(column), "rocksdb.num-running-compactions", &running) &&
             running == 0;
    };
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!compacted() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(compacted()) << "level 0 of family " << static_cast<int>(column)
                             << " was not compacted within 60 s";
    std::set<std::string> deeper;
    for (const auto& level : files()) {
      deeper.insert(level.begin(), level.end());
    }
    EXPECT_EQ(deeper, flushed) << "level-0 files of family " << static_cast<int>(column)
                               << " were rewritten, not moved";
  }
  opened.value().reset();
  std::filesystem::remove_all(dir);
}

// The dedup memtable's filter is allocated and zeroed with each new memtable, on the writing
// thread while every write waits (20-26 ms per switch on the benchmark VM when it was 10% of the
// buffer): it stays small, and it still answers lookups of keys the memtable does not hold.
TEST(StoreMemtableFilter, DedupMemtableFilterIsSmallAndStillAnswersNewKeys) {
  const auto dir = FreshTestDir("carehub-store-memtable-filter");
  const StoreOptions options{dir};
  ASSERT_EQ(options.write_buffer_bytes, 64ull << 20) << "the bound below is for the default buffer";
  auto opened = Database::Open(options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Database& database = *opened.value();
  rocksdb::DB* db = database.db();
  rocksdb::ColumnFamilyHandle* dedup = database.cf(Column::kDedup);

  // One key: RocksDB updates the memtable's size as it is written to.
  ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), dedup, DedupKey("RXK", "stored"), "v").ok());
  uint64_t memtable_bytes = 0;
  ASSERT_TRUE(db->GetIntProperty(dedup, "rocksdb.cur-size-active-mem-table", &memtable_bytes));
  EXPECT_LT(memtable_bytes, 2ull << 20)
      << "a dedup memtable holding one key takes " << memtable_bytes << " bytes";

  // Counted as a difference at counting level, the thread's own level put back after (as
  // DedupIndex's lookup meter does): other tests on this thread keep their perf context.
  const rocksdb::PerfLevel level = rocksdb::GetPerfLevel();
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableCount);
  const uint64_t misses_before = rocksdb::get_perf_context()->bloom_memtable_miss_count;
  std::string value;
  const auto absent = db->Get(rocksdb::ReadOptions(), dedup, DedupKey("RXK", "absent"), &value);
  const uint64_t filtered = rocksdb::get_perf_context()->bloom_memtable_miss_count - misses_before;
  rocksdb::SetPerfLevel(level);
  EXPECT_TRUE(absent.IsNotFound()) << absent.ToString();
  EXPECT_EQ(filtered, 1u) << "the memtable's filter did not answer the absent key";
  opened.value().reset();
  std::filesystem::remove_all(dir);
}

TEST(EventCodec, HubFieldsSuffixParsesAsTheEventWithItsHubFields) {
  v1::Event event;
  event.mutable_envelope()->set_event_id("MSG-1");
  event.mutable_envelope()->set_publisher_ods("RXK");
  event.mutable_activity()->set_kind(v1::ACTIVITY_KIND_DISCHARGE);
  std::string bytes = CanonicalBytes(event);
  // 1 700 000 000.123456 s: the suffix keeps microseconds.
  const auto at =
      std::chrono::system_clock::time_point(std::chrono::microseconds(1'700'000'000'123'456));
  AppendHubFields(&bytes, 300, at);  // 300 needs a two-byte varint
  v1::Event parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  EXPECT_EQ(parsed.envelope().hub_seq(), 300u);
  EXPECT_EQ(parsed.envelope().received_at().seconds(), 1'700'000'000);
  EXPECT_EQ(parsed.envelope().received_at().nanos(), 123'456'000);
  EXPECT_EQ(parsed.envelope().event_id(), "MSG-1") << "the publisher's fields survive the merge";
  EXPECT_EQ(parsed.activity().kind(), v1::ACTIVITY_KIND_DISCHARGE);
}

v1::Event DischargeEvent() {
  v1::Event event;
  event.mutable_envelope()->set_event_id("MSG-1");
  event.mutable_envelope()->set_publisher_ods("RXK");
  event.mutable_activity()->set_kind(v1::ACTIVITY_KIND_DISCHARGE);
  return event;
}

TEST(EventCodec, AcceptedBytesAreTheRecordBeforeItsHubFields) {
  const std::string sent = EnvelopeLast(DischargeEvent());
  ASSERT_NE(sent, CanonicalBytes(DischargeEvent())) << "the test needs a non-canonical encoding";
  for (const auto micros : {int64_t{1'700'000'000'123'456}, int64_t{1'700'000'000'000'000}}) {
    std::string record = sent;
    AppendHubFields(&record, 300,
                    std::chrono::system_clock::time_point(std::chrono::microseconds(micros)));
    v1::Event stored;
    ASSERT_TRUE(stored.ParseFromString(record));
    auto accepted = AcceptedBytes(record, stored);
    ASSERT_TRUE(accepted.has_value()) << "received_at " << micros << " us";
    EXPECT_EQ(*accepted, sent);
    // Another seq's hub fields do not match this record's tail.
    stored.mutable_envelope()->set_hub_seq(301);
    EXPECT_FALSE(AcceptedBytes(record, stored).has_value());
  }
  // A whole message with its hub fields inside the envelope ends otherwise.
  v1::Event whole = DischargeEvent();
  whole.mutable_envelope()->set_hub_seq(300);
  whole.mutable_envelope()->mutable_received_at()->set_seconds(1'700'000'000);
  EXPECT_FALSE(AcceptedBytes(whole.SerializeAsString(), whole).has_value());
}

TEST(EventCodec, SameEventContentIgnoresEncodingAndHubFieldsOnly) {
  const v1::Event original = DischargeEvent();
  v1::Event reordered;
  ASSERT_TRUE(reordered.ParseFromString(EnvelopeLast(original)));
  reordered.mutable_envelope()->set_hub_seq(7);
  EXPECT_TRUE(SameEventContent(original, reordered));
  v1::Event changed = original;
  changed.mutable_envelope()->set_source_system("other");
  EXPECT_FALSE(SameEventContent(original, changed));
}

TEST(StoreKeys, RoutePrefixRoundTripsAndRefusesTruncatedPrefixes) {
  RouteKey route{"RXK", "RXK01", "activity.discharge"};
  EXPECT_EQ(RoutePrefix(route), std::string("RXK\0RXK01\0activity.discharge\0", 29));
  EXPECT_EQ(ParseRoutePrefix(RoutePrefix(route)), route);
  EXPECT_FALSE(ParseRoutePrefix(std::string("RXK\0RXK01", 9)).has_value());
  EXPECT_EQ(DedupKey("RXK", "MSG1"), std::string("RXK\0MSG1", 8));
}

TEST(StoreKeys, RouteEntryValuesRoundTripAndRefuseWhatNoWriterMakes) {
  std::vector<uint64_t> seqs = {7, 8, 200, 70'000, UINT64_MAX};
  std::string value;
  EncodeRouteEntryValue(seqs, &value);
  std::vector<uint64_t> decoded;
  ASSERT_TRUE(DecodeRouteEntry(7, value, &decoded));
  EXPECT_EQ(decoded, seqs);
  EncodeRouteEntryValue(std::vector<uint64_t>{42}, &value);
  EXPECT_EQ(value, "") << "an entry of one event is format 1's";
  ASSERT_TRUE(DecodeRouteEntry(42, "", &decoded));
  EXPECT_EQ(decoded, (std::vector<uint64_t>{42}));
  EXPECT_FALSE(DecodeRouteEntry(1, std::string("\x80", 1), &decoded)) << "truncated varint";
  EXPECT_FALSE(DecodeRouteEntry(1, std::string("\x00", 1), &decoded)) << "a seq twice";
  EXPECT_FALSE(DecodeRouteEntry(UINT64_MAX, std::string("\x01", 1), &decoded)) << "past 2^64";
  EXPECT_FALSE(DecodeRouteEntry(1, std::string(11, '\xff'), &decoded)) << "over-long varint";
}

}  // namespace
}  // namespace carehub::hub
