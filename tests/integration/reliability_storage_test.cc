// Storage faults against the real hub (issue 9): a read-only data directory at start and at run
// time, and a damaged write-ahead log after a crash. Each shows clear behaviour (an exit with one
// line, or RETRY with not-ready, a log line and a metric), that no acknowledged event is lost,
// and the documented recovery (docs/reliability.md). The full disk is ops_store_full_test.cc.
//
// Runs as root (CI does): it mounts a tmpfs and a loop-mounted ext4 image.

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "carehub/client/publisher.h"
#include "harness/hub_process.h"
#include "harness/raw_publisher.h"
#include "ops_common.h"
#include "reliability_support.h"
#include "scratch_mounts.h"

namespace carehub::itest::reliability {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr size_t kWalBlock = 32 * 1024;  // RocksDB log format: records are cut into 32 KiB blocks
constexpr size_t kWalHeader = 7;         // crc32c (4), length (2, little-endian), type (1)

// Moves a freshly started hub onto `mount_fn`'s filesystem: stop, empty the data dir, mount,
// restart.
template <typename MountFn>
auto MoveHubOnto(HubProcess& hub, MountFn mount_fn) -> decltype(mount_fn()) {
  auto stopped = hub.Stop();
  if (!stopped.ok()) {
    return stopped.status();
  }
  std::filesystem::remove_all(hub.data_dir());
  std::filesystem::create_directories(hub.data_dir());
  auto mounted = mount_fn();
  if (!mounted.ok()) {
    return mounted;
  }
  Status restarted = hub.Restart();
  if (!restarted.ok()) {
    return restarted;
  }
  return mounted;
}

// Runs `carehub --config <hub's config>` plus `extra` to completion: for starts that must fail.
Result<CommandResult> RunHubBinary(const HubProcess& hub, std::vector<std::string> extra) {
  std::vector<std::string> argv = {BinaryPath("carehub").string(), "--config",
                                   hub.config_path().string()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return RunCommand(argv, hub.dir(), seconds(60));
}

// The lines the daemon itself prints on a failed start ("carehub: <reason>"), not its log lines.
std::vector<std::string> ReasonLines(const std::string& stderr_text) {
  std::vector<std::string> out;
  std::istringstream in(stderr_text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("carehub: ", 0) == 0) {
      out.push_back(line);
    }
  }
  return out;
}

// The newest write-ahead log file (NNNNNN.log) in a RocksDB dir.
std::filesystem::path NewestWal(const std::filesystem::path& dir) {
  std::filesystem::path newest;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const auto& p = entry.path();
    if (p.extension() == ".log" && (newest.empty() || p.filename() > newest.filename())) {
      newest = p;
    }
  }
  return newest;
}

std::string ReadBytes(const std::filesystem::path& p) { return ReadFileText(p); }

void WriteBytes(const std::filesystem::path& p, const std::string& bytes, bool append) {
  std::ofstream out(p, std::ios::binary | (append ? std::ios::app : std::ios::trunc));
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Every acknowledged event is stored once, at the hub_seq it was acknowledged with; returns how
// many events the store holds.
size_t ExpectAckedStoredOnce(HubProcess& hub, const std::map<std::string, uint64_t>& acked) {
  auto store = hub.OpenStore();
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (!store.ok()) {
    return 0;
  }
  auto events = ReadAllEvents(*store.value());
  std::map<std::string, uint64_t> stored;
  for (const auto& e : events) {
    EXPECT_TRUE(stored.emplace(e.event.envelope().event_id(), e.hub_seq).second)
        << e.event.envelope().event_id() << " stored twice";
  }
  size_t missing = 0;
  size_t moved = 0;
  for (const auto& [id, seq] : acked) {
    auto it = stored.find(id);
    missing += it == stored.end();
    moved += it != stored.end() && it->second != seq;
  }
  EXPECT_EQ(missing, 0u) << "acknowledged events lost";
  EXPECT_EQ(moved, 0u) << "acknowledged events at another hub_seq";
  return events.size();
}

TEST(ReliabilityStorage, ReadOnlyDataDirAtStartExitsWithOneLineAndRecovers) {
  ASSERT_EQ(::geteuid(), 0u) << "this test mounts a tmpfs and must run as root (as CI does)";
  const uint64_t seed = TestSeed("ReadOnlyDataDirAtStart", 9101);
  auto started = HubProcess::Start(HubOptions("rel-ro-start"));
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  auto& hub = *started.value();
  auto mount = MoveHubOnto(hub, [&] { return TmpfsMount::Mount(hub.data_dir(), "64m"); });
  ASSERT_TRUE(mount.ok()) << mount.status().ToString();

  auto events = MakeEvents(seed, "ro-start-", 500);
  std::map<std::string, uint64_t> acked;
  {
    auto pub = RawPublisher::Connect(hub.ingest_endpoint());
    ASSERT_TRUE(pub.ok());
    auto r = PublishAcked(*pub.value(), events, 100);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    acked = r.value();
  }
  ASSERT_TRUE(hub.Stop().ok());
  // Nothing has a file open on it now, so the kernel lets it go read-only.
  ASSERT_TRUE(mount.value()->Remount(true).ok());

  auto run = RunHubBinary(hub, {});
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  EXPECT_TRUE(run->status.exit_code.has_value() && *run->status.exit_code != 0)
      << "a hub on a read-only data dir must exit non-zero (not crash): " << run->status.ToString();
  auto reasons = ReasonLines(run->err);
  ASSERT_EQ(reasons.size(), 1u) << run->err;
  EXPECT_NE(reasons[0].find("Read-only file system"), std::string::npos) << reasons[0];
  EXPECT_NE(reasons[0].find(hub.data_dir().string()), std::string::npos) << reasons[0];
  std::printf("read-only at start: %s -> %s\n", run->status.ToString().c_str(), reasons[0].c_str());

  // Writable again: the hub starts and has everything.
  ASSERT_TRUE(mount.value()->Remount(false).ok());
  ASSERT_TRUE(hub.Restart().ok()) << hub.ReadLog();
  ASSERT_TRUE(hub.Stop().ok());
  EXPECT_EQ(ExpectAckedStoredOnce(hub, acked), events.size());
}

TEST(ReliabilityStorage, ReadOnlyAtRunTimeAnswersRetryNotReadyAndLosesNothing) {
  ASSERT_EQ(::geteuid(), 0u) << "this test mounts an ext4 image and must run as root";
  const uint64_t seed = TestSeed("ReadOnlyAtRunTime", 9202);
  TempDir outside("rel-ro-run-img");  // the image and the outbox live off the faulty filesystem
  auto started = HubProcess::Start(HubOptions("rel-ro-run"));
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  auto& hub = *started.value();
  auto mount = MoveHubOnto(hub, [&] {
    // Sparse image: RocksDB preallocates its log files (~140 MiB) but writes little.
    return Ext4LoopMount::Create(outside.path() / "data.img", hub.data_dir(), 1024);
  });
  ASSERT_TRUE(mount.ok()) << mount.status().ToString();
  const std::string admin = hub.admin_address();
  ASSERT_EQ(ops::HttpGet(admin, "/readyz").status, 200);

  auto raw = RawPublisher::Connect(hub.ingest_endpoint());
  ASSERT_TRUE(raw.ok());
  auto before = PublishAcked(*raw.value(), MakeEvents(seed, "ro-run-before-", 300), 100);
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  std::map<std::string, uint64_t> acked = before.value();

  // The kernel turns the filesystem read-only under the running hub (a failing disk).
  ASSERT_TRUE(mount.value()->TriggerError().ok());

  std::vector<v1::Event> refused;
  for (int attempt = 0; attempt < 20 && refused.empty(); ++attempt) {
    auto batch =
        MakeEvents(seed + 1 + attempt, "ro-run-fault-" + std::to_string(attempt) + "-", 100);
    auto r = raw.value()->Publish(batch, seconds(15));
    ASSERT_TRUE(r.ok()) << r.status().ToString() << (hub.running() ? "" : " (the hub died)");
    auto counts = CountResults(r.value());
    if (counts.retry > 0) {
      ASSERT_EQ(counts.retry, batch.size()) << "a refused batch is refused whole";
      refused = batch;
    } else {
      // Accepted before the error reached the write path: acknowledged, so it must survive.
      for (int k = 0; k < r.value().results_size(); ++k) {
        ASSERT_EQ(r.value().results(k).status(), v1::EventResult::ACCEPTED);
        acked[batch[k].envelope().event_id()] = r.value().results(k).hub_seq();
      }
    }
  }
  ASSERT_FALSE(refused.empty()) << "the hub never refused a write on a read-only filesystem";

  // Clear behaviour: not ready with the reason, the metrics, and a log line naming the error.
  auto ready = ops::HttpGet(admin, "/readyz");
  EXPECT_EQ(ready.status, 503) << ready.body;
  EXPECT_NE(ready.body.find("store refuses writes"), std::string::npos) << ready.body;
  auto samples = ops::ParseSamples(ops::HttpGet(admin, "/metrics").body);
  EXPECT_EQ(ops::SumSamples(samples, "carehub_store_writable"), 0);
  EXPECT_GE(ops::SumSamples(samples, "carehub_store_commit_failures_total"), 1);
  const std::string log = hub.ReadLog();
  EXPECT_NE(log.find("store refused a write"), std::string::npos);
  EXPECT_NE(log.find("Read-only file system"), std::string::npos);

  // A real publisher with a durable outbox during the fault: RETRY keeps every event in it.
  auto outbox = outside.path() / "outbox";
  auto during = MakeEvents(seed + 100, "ro-run-outbox-", 300);
  {
    client::PublisherOptions po;
    po.endpoint = hub.ingest_endpoint();
    po.outbox_dir = outbox;
    auto pub = client::Publisher::Open(po);
    ASSERT_TRUE(pub.ok()) << pub.status().ToString();
    ASSERT_TRUE(pub.value()->Enqueue(during).ok());
    EXPECT_FALSE(pub.value()->Drain(seconds(3)))
        << "events were answered while the store was read-only";
    EXPECT_EQ(pub.value()->Stats().outbox_depth, during.size());
    EXPECT_EQ(pub.value()->Stats().accepted, 0u);
    pub.value()->Close();
  }
  EXPECT_TRUE(hub.running()) << "the hub died on a read-only store";
  EXPECT_EQ(ops::HttpGet(admin, "/readyz").status, 503);

  // Recovery (docs/reliability.md): the filesystem cannot come back while the hub holds files on
  // it. Stop the hub, repair, mount, start: nothing acknowledged is lost.
  raw.value().reset();
  auto stopped = hub.Stop();
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_TRUE(stopped->Exited(0)) << stopped->ToString();
  ASSERT_TRUE(mount.value()->RepairAndRemount().ok());
  ASSERT_TRUE(hub.Restart().ok()) << hub.ReadLog();
  EXPECT_EQ(ops::HttpGet(hub.admin_address(), "/readyz").status, 200);

  // The outbox resends on its own; every held event arrives once.
  {
    client::PublisherOptions po;
    po.endpoint = hub.ingest_endpoint();
    po.outbox_dir = outbox;
    auto pub = client::Publisher::Open(po);
    ASSERT_TRUE(pub.ok()) << pub.status().ToString();
    EXPECT_TRUE(pub.value()->Drain(seconds(30)));
    auto stats = pub.value()->Stats();
    EXPECT_EQ(stats.accepted, during.size());
    EXPECT_EQ(stats.duplicate, 0u);
    pub.value()->Close();
  }
  auto again = RawPublisher::Connect(hub.ingest_endpoint());
  ASSERT_TRUE(again.ok());
  auto resent = again.value()->Publish(refused, seconds(15));
  ASSERT_TRUE(resent.ok()) << resent.status().ToString();
  EXPECT_EQ(CountResults(resent.value()).accepted, refused.size());
  again.value().reset();
  ASSERT_TRUE(hub.Stop().ok());
  EXPECT_EQ(ExpectAckedStoredOnce(hub, acked), acked.size() + during.size() + refused.size());
}

// Kills the hub after `events` were acknowledged (fsync durability: each batch of 100 is one
// write-ahead log record) and returns what was acknowledged.
std::map<std::string, uint64_t> PublishThenKill(HubProcess& hub,
                                                const std::vector<v1::Event>& events) {
  auto pub = RawPublisher::Connect(hub.ingest_endpoint());
  EXPECT_TRUE(pub.ok());
  auto acked = PublishAcked(*pub.value(), events, 100);
  EXPECT_TRUE(acked.ok()) << acked.status().ToString();
  hub.Kill();
  return acked.ok() ? acked.value() : std::map<std::string, uint64_t>{};
}

// The first `n` bytes (header included) of the first record in the log whose payload is longer,
// walking the record headers of the first block; empty when there is none.
std::string TornPrefixOfALargeRecord(const std::string& bytes, size_t n) {
  size_t at = 0;
  while (at + kWalHeader <= std::min(bytes.size(), kWalBlock)) {
    const size_t length = static_cast<uint8_t>(bytes[at + 4]) |
                          (static_cast<size_t>(static_cast<uint8_t>(bytes[at + 5])) << 8);
    if (length + kWalHeader > n && at + n <= bytes.size()) {
      return bytes.substr(at, n);
    }
    at += kWalHeader + length;
  }
  return "";
}

TEST(ReliabilityStorage, DamagedWalTailAfterCrashStartsWithEveryAcknowledgedEvent) {
  const uint64_t seed = TestSeed("DamagedWalTail", 9303);
  std::mt19937_64 rng(seed);
  auto started = HubProcess::Start(HubOptions("rel-wal-tail"));
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  auto& hub = *started.value();
  std::map<std::string, uint64_t> acked;

  // 1. A torn record: the first bytes of a record whose length says more follow (a write the
  // crash cut short).
  auto first = PublishThenKill(hub, MakeEvents(seed, "tail-a-", 2000));
  ASSERT_EQ(first.size(), 2000u);
  acked.insert(first.begin(), first.end());
  auto wal = NewestWal(hub.data_dir());
  ASSERT_FALSE(wal.empty());
  // The first 700 bytes of the log's first record longer than that (an event batch): small records
  // before it (the hub's own meta writes at start) must not be copied whole, which would be an old
  // record written again, not a torn one.
  std::string head = TornPrefixOfALargeRecord(ReadBytes(wal), 700);
  ASSERT_EQ(head.size(), 700u) << "the log holds no record longer than 700 bytes";
  WriteBytes(wal, head, /*append=*/true);
  ASSERT_TRUE(hub.Restart().ok()) << hub.ReadLog();

  // 2. Garbage after the last record, shaped as a record header with a short length and a wrong
  // checksum (what a power cut can leave in the unsynced tail), then random bytes.
  auto second = PublishThenKill(hub, MakeEvents(seed + 1, "tail-b-", 2000));
  ASSERT_EQ(second.size(), 2000u);
  acked.insert(second.begin(), second.end());
  wal = NewestWal(hub.data_dir());
  ASSERT_FALSE(wal.empty());
  std::string garbage(4096, '\0');
  for (auto& c : garbage) {
    c = static_cast<char>(rng() & 0xff);
  }
  garbage[4] = 100;  // length 100: a complete record to the reader, whose checksum is wrong
  garbage[5] = 0;
  garbage[6] = 1;  // kFullType
  WriteBytes(wal, garbage, /*append=*/true);
  ASSERT_TRUE(hub.Restart().ok()) << hub.ReadLog();
  EXPECT_NE(hub.ReadLog().find("the write-ahead log ended in a damaged record"), std::string::npos);

  // The hub goes on storing after both.
  auto after = RawPublisher::Connect(hub.ingest_endpoint());
  ASSERT_TRUE(after.ok());
  auto third = PublishAcked(*after.value(), MakeEvents(seed + 2, "tail-c-", 300), 100);
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  acked.insert(third->begin(), third->end());
  after.value().reset();
  ASSERT_TRUE(hub.Stop().ok());
  EXPECT_EQ(ExpectAckedStoredOnce(hub, acked), acked.size());
}

// Flips one payload byte of a record in the middle of the log, so intact records follow it.
// Walks the record headers of the middle block to land inside a payload, not on a header.
Status DamageMiddleRecord(const std::filesystem::path& wal) {
  std::string bytes = ReadBytes(wal);
  const size_t blocks = bytes.size() / kWalBlock;
  if (blocks < 4) {
    return Status::Error("short_wal",
                         "the log has only " + std::to_string(bytes.size()) + " bytes");
  }
  size_t at = (blocks / 2) * kWalBlock;
  const size_t end = at + kWalBlock;
  while (at + kWalHeader <= end) {
    const size_t length = static_cast<uint8_t>(bytes[at + 4]) |
                          (static_cast<size_t>(static_cast<uint8_t>(bytes[at + 5])) << 8);
    const int type = static_cast<uint8_t>(bytes[at + 6]);
    if (length >= 64 && type >= 1 && type <= 4) {
      bytes[at + kWalHeader + length / 2] ^= static_cast<char>(0xff);
      WriteBytes(wal, bytes, /*append=*/false);
      return Status::Ok();
    }
    at += kWalHeader + length;
  }
  return Status::Error("no_record", "no record payload found in the middle block");
}

TEST(ReliabilityStorage, DamageInsideTheWalRefusesToStartUntilSalvaged) {
  const uint64_t seed = TestSeed("DamagedWalMiddle", 9404);
  auto started = HubProcess::Start(HubOptions("rel-wal-middle"));
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  auto& hub = *started.value();
  auto events = MakeEvents(seed, "middle-", 3000);
  auto acked = PublishThenKill(hub, events);
  ASSERT_EQ(acked.size(), events.size());
  auto wal = NewestWal(hub.data_dir());
  ASSERT_FALSE(wal.empty());
  Status damaged = DamageMiddleRecord(wal);
  ASSERT_TRUE(damaged.ok()) << damaged.ToString();

  // Starting silently without acknowledged events is not acceptable: the hub refuses, with one
  // line that names the procedure, and changes nothing on disk.
  const std::string wal_before = ReadBytes(wal);
  auto run = RunHubBinary(hub, {});
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  EXPECT_TRUE(run->status.exit_code.has_value() && *run->status.exit_code != 0)
      << run->status.ToString();
  auto reasons = ReasonLines(run->err);
  ASSERT_EQ(reasons.size(), 1u) << run->err;
  EXPECT_NE(reasons[0].find("write-ahead log"), std::string::npos) << reasons[0];
  EXPECT_NE(reasons[0].find("docs/reliability.md"), std::string::npos) << reasons[0];
  EXPECT_NE(reasons[0].find("--salvage-wal"), std::string::npos) << reasons[0];
  EXPECT_EQ(ReadBytes(wal), wal_before) << "a refused start changed the log";
  std::printf("damaged log: %s\n", reasons[0].c_str());
  EXPECT_FALSE(hub.OpenStore().ok()) << "the store library itself must refuse too";

  // The documented recovery: one start with --salvage-wal keeps every intact record.
  auto salvage = ChildProcess::Spawn(
      {BinaryPath("carehub").string(), "--config", hub.config_path().string(), "--salvage-wal"},
      hub.dir() / "salvage.out", hub.dir() / "salvage.err");
  ASSERT_TRUE(salvage.ok()) << salvage.status().ToString();
  ASSERT_TRUE(ops::WaitFor(
      [&] {
        return ReadFileText(hub.dir() / "salvage.err").find("hub started") != std::string::npos;
      },
      seconds(30)))
      << ReadFileText(hub.dir() / "salvage.err");
  EXPECT_NE(ReadFileText(hub.dir() / "salvage.err").find("--salvage-wal"), std::string::npos);
  salvage->Signal(SIGTERM);
  auto salvage_exit = salvage->Wait(seconds(30));
  ASSERT_TRUE(salvage_exit.has_value());
  EXPECT_TRUE(salvage_exit->Exited(0)) << salvage_exit->ToString();

  // What is kept is in place; what is lost is the damaged record and, where RocksDB cannot skip
  // it and go on, every write after it: never a kept event after a lost one.
  std::set<std::string> lost;
  uint64_t max_kept_seq = 0;
  uint64_t min_lost_seq = UINT64_MAX;
  {
    auto store = hub.OpenStore();
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    std::map<std::string, uint64_t> stored;
    for (const auto& e : ReadAllEvents(*store.value())) {
      stored[e.event.envelope().event_id()] = e.hub_seq;
    }
    for (const auto& [id, seq] : acked) {
      auto it = stored.find(id);
      if (it == stored.end()) {
        lost.insert(id);
        min_lost_seq = std::min(min_lost_seq, seq);
      } else {
        EXPECT_EQ(it->second, seq) << id;
        max_kept_seq = std::max(max_kept_seq, seq);
      }
    }
  }
  std::printf("salvaged: %zu of %zu acknowledged events kept, %zu lost with the damage\n",
              acked.size() - lost.size(), acked.size(), lost.size());
  EXPECT_GE(lost.size(), 1u);
  EXPECT_LT(lost.size(), acked.size());
  EXPECT_LT(max_kept_seq, min_lost_seq) << "a hole: kept events after lost ones";

  // Publishers resend (from their source): the lost events are stored again, nothing twice.
  ASSERT_TRUE(hub.Restart().ok()) << hub.ReadLog();
  auto pub = RawPublisher::Connect(hub.ingest_endpoint());
  ASSERT_TRUE(pub.ok());
  auto results = pub.value()->PublishAll(events, 500, 4, seconds(60));
  ASSERT_TRUE(results.ok()) << results.status().ToString();
  auto counts = CountResults(*results);
  EXPECT_EQ(counts.accepted, lost.size());
  EXPECT_EQ(counts.duplicate, events.size() - lost.size());
  pub.value().reset();
  ASSERT_TRUE(hub.Stop().ok());
  auto store = hub.OpenStore();
  ASSERT_TRUE(store.ok());
  std::set<std::string> ids;
  for (const auto& e : ReadAllEvents(*store.value())) {
    EXPECT_TRUE(ids.insert(e.event.envelope().event_id()).second);
  }
  EXPECT_EQ(ids.size(), events.size());
}

}  // namespace
}  // namespace carehub::itest::reliability
