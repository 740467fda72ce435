// carehub-pipeline-profile: runs the hub's ingest pipeline in-process (no sockets) on a temp store
// and reports where the time goes: decode and Prepare (the frame read in place, authorise,
// validate, hash, dedup lookups, batch build) versus Commit (RocksDB write + WAL sync). Used to
// find the ingest bottleneck.
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <random>

#include "carehub/core/synthetic.h"
#include "carehub/hub/frame_decode.h"
#include "carehub/hub/ingest_pipeline.h"
#include "carehub/hub/store.h"
#include "carehub/metrics/registry.h"
#include "ingest_load.h"

int main(int argc, char** argv) {
  uint64_t events = 500'000;
  uint32_t batch = 1000;
  bool sync = true;
  int group = 8;
  CLI::App app{"profile the ingest pipeline in-process"};
  app.add_option("--events", events);
  app.add_option("--batch", batch);
  app.add_option("--sync", sync);
  app.add_option("--group", group, "batches per commit (group commit size)");
  CLI11_PARSE(app, argc, argv);
  for (const char* n : {"ingest", "store"}) {
    spdlog::register_logger(
        std::make_shared<spdlog::logger>(n, std::make_shared<spdlog::sinks::null_sink_mt>()));
  }
  auto dir =
      std::filesystem::temp_directory_path() / ("carehub-profile-" + std::to_string(getpid()));
  auto store = carehub::hub::Store::Open({dir});
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  carehub::metrics::Registry metrics;
  carehub::hub::IngestPipeline pipeline(store->get(), &metrics, {}, 400,
                                        carehub::SystemClock::Instance(), nullptr);
  carehub::SyntheticOptions so;
  so.population = 200'000;
  so.now = carehub::bench::GenerationDay();
  carehub::SyntheticGenerator gen(so);
  // Each batch as the frame a publisher sends; the hub reads it in place (ReadPublishInPlace).
  std::vector<std::string> batches(events / batch);
  for (size_t b = 0; b < batches.size(); ++b) {
    carehub::v1::Frame frame;
    frame.set_version(carehub::v1::PROTOCOL_VERSION_1);
    frame.mutable_publish()->set_batch_id(b + 1);
    for (uint32_t i = 0; i < batch; ++i) {
      *frame.mutable_publish()->add_events() = gen.Next();
    }
    batches[b] = frame.SerializeAsString();
  }
  carehub::hub::PublishInPlace in_place;
  // Thread CPU time, so the figures mean something on a machine shared with compilers.
  struct Clock {
    using time_point = std::chrono::nanoseconds;
    static time_point now() {
      timespec ts{};
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
      return std::chrono::nanoseconds(ts.tv_sec * 1'000'000'000LL + ts.tv_nsec);
    }
  };
  double prepare_s = 0, commit_s = 0, finish_s = 0;
  auto start = Clock::now();
  std::vector<std::unique_ptr<carehub::hub::PreparedBatch>> pending;
  for (size_t b = 0; b < batches.size(); ++b) {
    auto t0 = Clock::now();
    if (!carehub::hub::ReadPublishInPlace(batches[b], batch, &in_place)) {
      std::fprintf(stderr, "batch %zu is not a plain frame\n", b);
      return 1;
    }
    pending.push_back(pipeline.Prepare("x", "", in_place.batch_id, in_place.event_views(),
                                       in_place.event_bytes()));
    auto t1 = Clock::now();
    prepare_s += std::chrono::duration<double>(t1 - t0).count();
    if (pending.size() == static_cast<size_t>(group) || b + 1 == batches.size()) {
      for (size_t i = 0; i < pending.size(); ++i) {
        auto s = (*store)->Commit(&pending[i]->writes, sync && i + 1 == pending.size());
        pending[i]->committed = s.ok();
      }
      auto t2 = Clock::now();
      commit_s += std::chrono::duration<double>(t2 - t1).count();
      for (auto& p : pending) {
        pipeline.Finish(p.get());
        pipeline.Recycle(std::move(p));
      }
      finish_s += std::chrono::duration<double>(Clock::now() - t2).count();
      pending.clear();
    }
  }
  double total = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("events %lu batch %u group %d sync %d\n", events, batch, group, sync);
  std::printf(
      "decode+prepare %.3f s (%.2f us/event)  commit %.3f s (%.2f us/event)  finish %.3f s\n",
      prepare_s, prepare_s * 1e6 / events, commit_s, commit_s * 1e6 / events, finish_s);
  std::printf(
      "CPU: serial total %.3f s = %.0f events/s; pipelined bound max(prepare, commit) = %.0f "
      "events/s\n",
      total, events / total, events / std::max(prepare_s, commit_s));
  store->reset();
  std::filesystem::remove_all(dir);
  return 0;
}
