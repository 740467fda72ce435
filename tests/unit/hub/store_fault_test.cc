// Storage errors must never read as "absent" (issue: errors that look like "not found"). A store on
// a FileSystem whose reads can be made to fail, through RocksDB's public FileSystemWrapper: every
// read of each part returns an error, never an empty answer, and the ingest pipeline answers RETRY
// with nothing stored rather than accept a resend a second time.
#include <gtest/gtest.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "carehub/core/synthetic.h"
#include "carehub/hub/ingest_pipeline.h"
#include "carehub/hub/store.h"
#include "carehub/metrics/registry.h"
#include "store_test_util.h"

namespace carehub::hub {
namespace {

// Reads of table files fail while `failing` is set: what a bad sector or a vanished device does.
class FailingReadFileSystem : public rocksdb::FileSystemWrapper {
 public:
  explicit FailingReadFileSystem(const std::shared_ptr<rocksdb::FileSystem>& base)
      : FileSystemWrapper(base) {}
  const char* Name() const override { return "FailingReadFileSystem"; }

  rocksdb::IOStatus NewRandomAccessFile(const std::string& name,
                                        const rocksdb::FileOptions& options,
                                        std::unique_ptr<rocksdb::FSRandomAccessFile>* file,
                                        rocksdb::IODebugContext* dbg) override {
    auto s = target()->NewRandomAccessFile(name, options, file, dbg);
    if (s.ok()) {
      *file = std::make_unique<File>(std::move(*file), &failing);
    }
    return s;
  }

  std::atomic<bool> failing{false};

 private:
  class File : public rocksdb::FSRandomAccessFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSRandomAccessFile>&& base, const std::atomic<bool>* failing)
        : FSRandomAccessFileOwnerWrapper(std::move(base)), failing_(failing) {}
    rocksdb::IOStatus Read(uint64_t offset, size_t n, const rocksdb::IOOptions& options,
                           rocksdb::Slice* result, char* scratch,
                           rocksdb::IODebugContext* dbg) const override {
      if (failing_->load()) {
        return rocksdb::IOStatus::IOError("injected read error");
      }
      return target()->Read(offset, n, options, result, scratch, dbg);
    }
    rocksdb::IOStatus MultiRead(rocksdb::FSReadRequest* reqs, size_t num_reqs,
                                const rocksdb::IOOptions& options,
                                rocksdb::IODebugContext* dbg) override {
      if (failing_->load()) {
        return rocksdb::IOStatus::IOError("injected read error");
      }
      return target()->MultiRead(reqs, num_reqs, options, dbg);
    }

   private:
    const std::atomic<bool>* failing_;
  };
};

class StoreFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDir("carehub-store-fault");
    fs_ = std::make_shared<FailingReadFileSystem>(rocksdb::FileSystem::Default());
    env_ = rocksdb::NewCompositeEnv(fs_);
    // Fill through a first store, then reopen: the data sits in table files, none of it cached.
    {
      auto store = OpenStore();
      WriteBatch batch;
      for (uint64_t seq = 1; seq <= 100; ++seq) {
        v1::Event e;
        e.mutable_envelope()->set_event_id("e" + std::to_string(seq));
        e.mutable_envelope()->set_publisher_ods("RXK");
        e.mutable_envelope()->set_hub_seq(seq);
        e.mutable_envelope()->mutable_received_at()->set_seconds(1000 + static_cast<int64_t>(seq));
        store->events().Add(&batch, seq, e.SerializeAsString());
        store->dedup().Add(&batch, DedupKey("RXK", "e" + std::to_string(seq)),
                           DedupEntry{seq, HashContent("x"), 20000});
        store->routes().Add(&batch, RoutePrefix(kRoute), seq);
      }
      store->routes().AddKnown(&batch, kRoute);
      v1::QuarantineRecord q;
      q.set_id(1);
      q.set_reason("invalid_nhs_number");
      store->quarantine().Add(&batch, q);
      ASSERT_TRUE(store->Commit(&batch, true).ok());
      ASSERT_TRUE(store->cursors().Put("feed", 40).ok());
      v1::AuditRecord audit;
      audit.set_at_unix_ms(5000);
      audit.set_kind("delivery");
      ASSERT_TRUE(store->audit().Append(audit).ok());
    }  // closing flushes every memtable to table files
    store_ = OpenStore();
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    fs_->failing = false;
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<Store> OpenStore() {
    StoreOptions options;
    options.dir = dir_;
    options.env = env_.get();
    options.block_cache_bytes = 1 << 20;
    auto store = Store::Open(options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  const RouteKey kRoute{"RXK", "RXK01", "activity.discharge"};
  std::filesystem::path dir_;
  std::shared_ptr<FailingReadFileSystem> fs_;
  std::unique_ptr<rocksdb::Env> env_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreFaultTest, EveryReadWorksWhileTheDiskDoes) {
  auto found = store_->dedup().Lookup({DedupKey("RXK", "e7")});
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_TRUE(found.value()[0].has_value());
  EXPECT_EQ(found.value()[0]->hub_seq, 7u);
  EXPECT_TRUE(store_->events().Get(7).ok());
  EXPECT_TRUE(store_->routes().Scan(kRoute, 1, 100, 1000).ok());
}

TEST_F(StoreFaultTest, FailedDedupLookupIsAnErrorNotAMiss) {
  fs_->failing = true;
  auto found = store_->dedup().Lookup({DedupKey("RXK", "e7")});
  ASSERT_FALSE(found.ok()) << "a failed read answered as 'not stored' would accept a resend twice";
  EXPECT_EQ(found.status().code(), "store_io_error");
}

TEST_F(StoreFaultTest, FailedLogScanRouteScanAndGetAreErrors) {
  fs_->failing = true;
  uint64_t seen = 0;
  Status scan = store_->events().Scan(1, 100, [&](uint64_t, std::string_view) {
    ++seen;
    return true;
  });
  EXPECT_FALSE(scan.ok()) << "the scan saw " << seen << " events and called that the end";
  EXPECT_EQ(seen, 0u);
  auto routed = store_->routes().Scan(kRoute, 1, 100, 1000);
  EXPECT_FALSE(routed.ok()) << "a failed route scan answered " << routed.value().size() << " seqs";
  auto event = store_->events().Get(7);
  EXPECT_FALSE(event.ok()) << "a failed read answered as 'no event at 7'";
  auto many = store_->events().MultiGet({5, 6, 7});
  EXPECT_FALSE(many.ok());
  EXPECT_FALSE(store_->events().SeqAtTime(1050).ok());
}

TEST_F(StoreFaultTest, FailedCursorAuditAndQuarantineReadsAreErrors) {
  fs_->failing = true;
  auto cursor = store_->cursors().Get("feed");
  EXPECT_FALSE(cursor.ok()) << "a failed read answered as 'never acknowledged'";
  EXPECT_FALSE(store_->audit().Query("", 0, INT64_MAX, 100).ok());
  EXPECT_FALSE(store_->quarantine().Get(1).ok());
}

TEST_F(StoreFaultTest, IngestAnswersRetryAndStoresNothingWhenDedupCannotBeRead) {
  SyntheticOptions so;
  so.seed = 11;
  so.id_prefix = "fault-";
  const v1::Event event = SyntheticGenerator(so).Next();
  metrics::Registry metrics;
  auto publish_once = [&](IngestPipeline& pipeline) {
    v1::Publish publish;
    *publish.add_events() = event;
    return pipeline.Prepare("peer", "", &publish);
  };
  {
    IngestPipeline pipeline(store_.get(), &metrics, ValidationLimits{}, 400,
                            SystemClock::Instance(), nullptr);
    auto batch = publish_once(pipeline);
    ASSERT_EQ(batch->result.results(0).status(), v1::EventResult::ACCEPTED)
        << batch->result.results(0).reason();
    ASSERT_TRUE(store_->Commit(&batch->writes, true).ok());
    batch->committed = true;
    pipeline.Finish(batch.get());
  }
  store_.reset();
  store_ = OpenStore();  // the dedup key now sits in a table file, not in memory
  ASSERT_NE(store_, nullptr);
  IngestPipeline pipeline(store_.get(), &metrics, ValidationLimits{}, 400, SystemClock::Instance(),
                          nullptr);

  fs_->failing = true;
  auto resend = publish_once(pipeline);
  const auto& r = resend->result.results(0);
  EXPECT_EQ(r.status(), v1::EventResult::RETRY)
      << "a resend whose dedup key could not be read was answered " << r.status();
  EXPECT_EQ(r.reason(), "store_unavailable");
  EXPECT_EQ(resend->writes.Count(), 0u) << "nothing may be written for an unread batch";

  fs_->failing = false;
  auto again = publish_once(pipeline);
  EXPECT_EQ(again->result.results(0).status(), v1::EventResult::DUPLICATE)
      << "once the disk reads again, the resend is recognised";
}

// A resend in another encoding is compared with the stored original; when that read fails the
// answer is RETRY, never CONFLICT (a failed read is not "different") nor DUPLICATE.
TEST_F(StoreFaultTest, ResendInAnotherEncodingIsRetryWhenTheOriginalCannotBeRead) {
  SyntheticOptions so;
  so.seed = 12;
  so.id_prefix = "fault-encoding-";
  const v1::Event event = SyntheticGenerator(so).Next();
  const std::string canonical = event.SerializeAsString();
  const std::string reordered = testing::EnvelopeLast(event);
  metrics::Registry metrics;
  auto publish = [&](IngestPipeline& pipeline, const std::string& bytes) {
    v1::Publish batch;
    EXPECT_TRUE(batch.add_events()->ParseFromString(bytes));
    const std::string_view received[] = {bytes};
    return pipeline.Prepare("peer", "", &batch, true, received);
  };
  {
    IngestPipeline pipeline(store_.get(), &metrics, ValidationLimits{}, 400,
                            SystemClock::Instance(), nullptr);
    auto batch = publish(pipeline, canonical);
    ASSERT_EQ(batch->result.results(0).status(), v1::EventResult::ACCEPTED)
        << batch->result.results(0).reason();
    ASSERT_TRUE(store_->Commit(&batch->writes, true).ok());
    batch->committed = true;
    pipeline.Finish(batch.get());
    // Later events fill other blocks of the log: the pipeline reads the last one when it starts,
    // which must not bring the original's block into the cache.
    WriteBatch later;
    for (uint64_t seq = pipeline.next_seq(); seq < pipeline.next_seq() + 200; ++seq) {
      store_->events().Add(&later, seq, std::string(1000, 'x'));
    }
    ASSERT_TRUE(store_->Commit(&later, true).ok());
  }
  store_.reset();
  store_ = OpenStore();  // the event and its dedup key now sit in table files
  ASSERT_NE(store_, nullptr);
  IngestPipeline pipeline(store_.get(), &metrics, ValidationLimits{}, 400, SystemClock::Instance(),
                          nullptr);
  // A byte-identical resend reads only the dedup index, which leaves its blocks cached: the
  // failing reads below are then the original event's alone.
  ASSERT_EQ(publish(pipeline, canonical)->result.results(0).status(), v1::EventResult::DUPLICATE);

  fs_->failing = true;
  auto resend = publish(pipeline, reordered);
  const auto& r = resend->result.results(0);
  EXPECT_EQ(r.status(), v1::EventResult::RETRY) << "answered " << r.status() << ": " << r.message();
  EXPECT_EQ(r.reason(), "store_unavailable");
  EXPECT_NE(r.message().find("compare"), std::string::npos)
      << "the dedup read itself failed, not the comparison: " << r.message();
  EXPECT_EQ(resend->writes.Count(), 0u);

  fs_->failing = false;
  auto again = publish(pipeline, reordered);
  EXPECT_EQ(again->result.results(0).status(), v1::EventResult::DUPLICATE)
      << "once the disk reads again, the resend is recognised as the same event";
}

}  // namespace
}  // namespace carehub::hub
