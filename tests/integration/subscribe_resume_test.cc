// Resumable feeds (DESIGN §6) through the real `carehub-subscribe` tool: a subscriber killed with
// SIGKILL mid-stream and started again with --from resume loses nothing (at-least-once, ordered
// by hub_seq), and every start mode (earliest, latest, a hub_seq, a time, resume) begins where it
// says; an unknown subscription is refused with one line.

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <set>
#include <thread>

#include "harness/workload.h"
#include "subscribe_support.h"

namespace carehub::itest {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kAgreements = R"(subscribers:
  - id: crash-tester
    subscriptions:
      - {id: crash-feed, purpose: direct_care}
  - id: mode-tester
    subscriptions:
      - {id: modes-feed, purpose: direct_care}
  - id: cursor-tester
    subscriptions:
      - {id: cursor-feed, purpose: direct_care}
  - id: latest-tester
    subscriptions:
      - {id: latest-feed, purpose: direct_care}
agreements:
  - id: DSA-T-CRASH
    subscriber: crash-tester
    purpose: direct_care
    legal_basis: "test"
    valid_from: 2020-01-01
    valid_until: 2099-12-31
    sources: ["*"]
    event_types: ["*"]
    patient_fields: identifiable
  - id: DSA-T-MODES
    subscriber: mode-tester
    purpose: direct_care
    legal_basis: "test"
    valid_from: 2020-01-01
    valid_until: 2099-12-31
    sources: ["*"]
    event_types: ["*"]
    patient_fields: identifiable
  - id: DSA-T-CURSOR
    subscriber: cursor-tester
    purpose: direct_care
    legal_basis: "test"
    valid_from: 2020-01-01
    valid_until: 2099-12-31
    sources: ["*"]
    event_types: ["*"]
    patient_fields: identifiable
  - id: DSA-T-LATEST
    subscriber: latest-tester
    purpose: direct_care
    legal_basis: "test"
    valid_from: 2020-01-01
    valid_until: 2099-12-31
    sources: ["*"]
    event_types: ["*"]
    patient_fields: identifiable
)";

std::vector<v1::Event> Events(uint64_t seed, const std::string& prefix, size_t n) {
  WorkloadOptions wo;
  wo.seed = seed;
  wo.id_prefix = prefix;
  wo.events = n;
  return MakeWorkload(wo).events;
}

size_t CountLines(const std::filesystem::path& path) {
  std::string text = ReadFileText(path);
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

// The hub_seqs a finished carehub-subscribe run wrote to `out`.
Result<std::vector<uint64_t>> RunAndRead(const std::string& endpoint,
                                         const std::vector<std::string>& args,
                                         const std::filesystem::path& dir,
                                         const std::filesystem::path& out, std::string* err) {
  std::vector<std::string> all = args;
  all.insert(all.end(), {"--out", out.string()});
  auto run = RunSubscribeTool(endpoint, all, dir, seconds(60));
  if (!run.ok()) {
    return run.status();
  }
  *err = run->err;
  if (!run->status.Exited(0)) {
    return Status::Error("tool_failed", run->status.ToString() + ": " + run->err);
  }
  auto events = ReadNdjson(out);
  if (!events.ok()) {
    return events.status();
  }
  return Seqs(events.value());
}

bool StrictlyIncreasing(const std::vector<uint64_t>& seqs) {
  return std::adjacent_find(seqs.begin(), seqs.end(), std::greater_equal<>()) == seqs.end();
}

std::vector<uint64_t> Range(uint64_t first, uint64_t last) {
  std::vector<uint64_t> out;
  for (uint64_t s = first; s <= last; ++s) {
    out.push_back(s);
  }
  return out;
}

TEST(SubscribeResumeTest, KilledSubscriberResumesWithoutGaps) {
  TempDir dir("sub-crash-files");
  auto agreements = WritePolicyFiles(dir.path(), kAgreements);
  ASSERT_TRUE(agreements.ok()) << agreements.status().ToString();
  auto hub = HubProcess::Start(HubWithAgreements("sub-crash", agreements.value()));
  ASSERT_TRUE(hub.ok()) << hub.status().ToString();
  auto& h = *hub.value();
  constexpr size_t kEvents = 30'000;
  auto seqs = PublishAccepted(h.ingest_endpoint(), Events(4242, "crash-", kEvents));
  ASSERT_TRUE(seqs.ok()) << seqs.status().ToString();
  const uint64_t last = seqs->back();
  ASSERT_EQ(last, kEvents);

  const auto out = dir.path() / "feed.ndjson";
  // A small window keeps the stream going long enough to kill it in the middle.
  const std::vector<std::string> args = {carehub::itest::BinaryPath("carehub-subscribe").string(),
                                         "--endpoint",
                                         h.subscribe_endpoint(),
                                         "--subscription",
                                         "crash-feed",
                                         "--from",
                                         "resume",
                                         "--window",
                                         "100",
                                         "--out",
                                         out.string()};
  auto first = ChildProcess::Spawn(args, dir.path() / "run1.out", dir.path() / "run1.err");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(WaitFor([&] { return CountLines(out) >= 3000; }, seconds(60)))
      << "the first run wrote only " << CountLines(out)
      << " lines; stderr: " << ReadFileText(dir.path() / "run1.err");
  first->Signal(SIGKILL);
  auto ended = first->Wait(seconds(10));
  ASSERT_TRUE(ended.has_value());
  ASSERT_EQ(ended->term_signal.value_or(0), SIGKILL) << ended->ToString();
  const std::string after_kill = ReadFileText(out);
  const size_t run1_lines =
      static_cast<size_t>(std::count(after_kill.begin(), after_kill.end(), '\n'));
  ASSERT_LT(run1_lines, kEvents) << "the first run finished before it was killed";
  std::cout << "killed the first run after " << run1_lines << " complete lines"
            << (after_kill.empty() || after_kill.back() == '\n' ? "" : " and a torn one") << "\n";

  auto second = RunSubscribeTool(h.subscribe_endpoint(),
                                 {"--subscription", "crash-feed", "--from", "resume", "--window",
                                  "1000", "--until-idle", "2", "--out", out.string()},
                                 dir.path(), seconds(90));
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  ASSERT_TRUE(second->status.Exited(0)) << second->status.ToString() << "\n" << second->err;

  auto all = ReadNdjson(out);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  auto got = Seqs(all.value());
  ASSERT_GE(got.size(), kEvents);
  std::vector<uint64_t> run1(got.begin(), got.begin() + static_cast<long>(run1_lines));
  std::vector<uint64_t> run2(got.begin() + static_cast<long>(run1_lines), got.end());
  ASSERT_FALSE(run2.empty());
  // Ordered by hub_seq within each run, so a repeat can only come from across the crash.
  EXPECT_TRUE(StrictlyIncreasing(run1)) << "the first run wrote out of hub_seq order";
  EXPECT_TRUE(StrictlyIncreasing(run2)) << "the resumed run wrote out of hub_seq order";
  std::set<uint64_t> unique(got.begin(), got.end());
  EXPECT_EQ(unique.size(), kEvents);
  EXPECT_EQ(*unique.begin(), 1u);
  EXPECT_EQ(*unique.rbegin(), last);
  // The resumed run starts at the stored cursor: at most the last unacknowledged batch repeats.
  const size_t repeats = got.size() - unique.size();
  std::cout << "resumed at hub_seq " << run2.front() << "; " << repeats
            << " events written twice across the crash\n";
  EXPECT_LE(run2.front(), run1.empty() ? 1 : run1.back() + 1) << "gap across the crash";
  EXPECT_LE(repeats, 1000u) << "the resumed run did not start from the stored cursor";
  EXPECT_NE(second->err.find("\"written\":" + std::to_string(run2.size())), std::string::npos)
      << second->err;
}

TEST(SubscribeResumeTest, StartModesBeginWhereTheySay) {
  TempDir dir("sub-modes-files");
  auto agreements = WritePolicyFiles(dir.path(), kAgreements);
  ASSERT_TRUE(agreements.ok()) << agreements.status().ToString();
  auto hub = HubProcess::Start(HubWithAgreements("sub-modes", agreements.value()));
  ASSERT_TRUE(hub.ok()) << hub.status().ToString();
  auto& h = *hub.value();

  auto batch1 = PublishAccepted(h.ingest_endpoint(), Events(61, "modes1-", 2000));
  ASSERT_TRUE(batch1.ok()) << batch1.status().ToString();
  // Every batch-1 event was received before this instant and every batch-2 event after it (the
  // hub stamps received_at before it answers; the pauses keep them out of the same millisecond).
  std::this_thread::sleep_for(milliseconds(30));
  const int64_t between_ms = ToUnixMillis(std::chrono::system_clock::now());
  std::this_thread::sleep_for(milliseconds(30));
  auto batch2 = PublishAccepted(h.ingest_endpoint(), Events(62, "modes2-", 1000));
  ASSERT_TRUE(batch2.ok()) << batch2.status().ToString();
  const uint64_t head = batch2->back();
  ASSERT_EQ(head, 3000u);
  ASSERT_EQ(batch2->front(), 2001u);

  std::string err;
  int n = 0;
  auto next_out = [&] { return dir.path() / ("out" + std::to_string(++n) + ".ndjson"); };
  const std::vector<std::string> idle = {"--until-idle", "1.5"};
  auto with = [&](std::vector<std::string> a) {
    a.insert(a.end(), idle.begin(), idle.end());
    return a;
  };

  auto earliest = RunAndRead(h.subscribe_endpoint(),
                             with({"--subscription", "modes-feed", "--from", "earliest"}),
                             dir.path(), next_out(), &err);
  ASSERT_TRUE(earliest.ok()) << earliest.status().ToString();
  EXPECT_EQ(earliest.value(), Range(1, head));

  auto at_seq =
      RunAndRead(h.subscribe_endpoint(), with({"--subscription", "modes-feed", "--from", "1500"}),
                 dir.path(), next_out(), &err);
  ASSERT_TRUE(at_seq.ok()) << at_seq.status().ToString();
  EXPECT_EQ(at_seq.value(), Range(1500, head));

  auto at_time =
      RunAndRead(h.subscribe_endpoint(),
                 with({"--subscription", "modes-feed", "--from", std::to_string(between_ms)}),
                 dir.path(), next_out(), &err);
  ASSERT_TRUE(at_time.ok()) << at_time.status().ToString();
  EXPECT_EQ(at_time.value(), Range(2001, head));

  // Latest: only what is stored after the subscription opened. Its own subscription, so the
  // "connected" the test waits for cannot be an earlier run's session the hub still holds.
  const auto latest_out = next_out();
  auto latest =
      ChildProcess::Spawn({BinaryPath("carehub-subscribe").string(), "--endpoint",
                           h.subscribe_endpoint(), "--subscription", "latest-feed", "--from",
                           "latest", "--until-idle", "4", "--out", latest_out.string()},
                          dir.path() / "latest.out", dir.path() / "latest.err");
  ASSERT_TRUE(latest.ok()) << latest.status().ToString();
  ASSERT_TRUE(WaitFor(
      [&] {
        auto status = AdminGet(h.admin_address(), "/api/v1/status");
        if (!status.ok()) {
          return false;
        }
        for (const auto& s : status->body["subscriptions"]) {
          if (s.value("id", "") == "latest-feed" && s.value("connected", false)) {
            return true;
          }
        }
        return false;
      },
      seconds(5)))
      << "the latest-mode subscriber never showed as connected";
  auto batch3 = PublishAccepted(h.ingest_endpoint(), Events(63, "modes3-", 500));
  ASSERT_TRUE(batch3.ok()) << batch3.status().ToString();
  auto latest_end = latest->Wait(seconds(30));
  ASSERT_TRUE(latest_end.has_value() && latest_end->Exited(0))
      << (latest_end ? latest_end->ToString() : "still running")
      << ReadFileText(dir.path() / "latest.err");
  auto latest_events = ReadNdjson(latest_out);
  ASSERT_TRUE(latest_events.ok()) << latest_events.status().ToString();
  EXPECT_EQ(Seqs(latest_events.value()), Range(3001, 3500));

  // Resume: a run that stops after 700 events has acknowledged exactly those; the next run with
  // --from resume starts right after them. A subscription never acknowledged resumes from the
  // earliest event.
  auto first_part = RunAndRead(
      h.subscribe_endpoint(), {"--subscription", "cursor-feed", "--from", "resume", "--max", "700"},
      dir.path(), next_out(), &err);
  ASSERT_TRUE(first_part.ok()) << first_part.status().ToString();
  ASSERT_EQ(first_part.value(), Range(1, 700));
  // The Ack is stored asynchronously; wait until the status shows the cursor.
  EXPECT_TRUE(WaitFor(
      [&] {
        auto status = AdminGet(h.admin_address(), "/api/v1/status");
        if (!status.ok()) {
          return false;
        }
        for (const auto& s : status->body["subscriptions"]) {
          if (s.value("id", "") == "cursor-feed" && s.value("cursor", 0u) == 700u) {
            return true;
          }
        }
        return false;
      },
      seconds(5)))
      << "the cursor of cursor-feed never reached 700";
  auto resumed = RunAndRead(h.subscribe_endpoint(),
                            with({"--subscription", "cursor-feed", "--from", "resume"}), dir.path(),
                            next_out(), &err);
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  EXPECT_EQ(resumed.value(), Range(701, 3500));

  // An unknown subscription: non-zero exit and one line saying why.
  auto unknown = RunSubscribeTool(h.subscribe_endpoint(),
                                  {"--subscription", "no-such-feed", "--from", "earliest"},
                                  dir.path(), seconds(20));
  ASSERT_TRUE(unknown.ok()) << unknown.status().ToString();
  ASSERT_TRUE(unknown->status.exit_code.has_value()) << unknown->status.ToString();
  EXPECT_NE(*unknown->status.exit_code, 0);
  EXPECT_EQ(std::count(unknown->err.begin(), unknown->err.end(), '\n'), 1) << unknown->err;
  EXPECT_NE(unknown->err.find("unknown_subscription"), std::string::npos) << unknown->err;
  EXPECT_NE(unknown->err.find("no-such-feed"), std::string::npos) << unknown->err;
  EXPECT_EQ(unknown->out, "");

  // A start the tool cannot parse is refused the same way, before connecting.
  auto bad_from = RunSubscribeTool(h.subscribe_endpoint(),
                                   {"--subscription", "modes-feed", "--from", "yesterday"},
                                   dir.path(), seconds(20));
  ASSERT_TRUE(bad_from.ok()) << bad_from.status().ToString();
  EXPECT_FALSE(bad_from->status.Exited(0)) << bad_from->status.ToString();
  EXPECT_EQ(std::count(bad_from->err.begin(), bad_from->err.end(), '\n'), 1) << bad_from->err;
}

}  // namespace
}  // namespace carehub::itest
