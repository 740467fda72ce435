// Section 6 of carehub-bench: what this machine can do at all, measured in the same run, so the
// hub's figures can be read as shares of the machine's limits.
#include <fcntl.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <zmq.hpp>

#include "carehub/core/synthetic.h"
#include "carehub/hub/store.h"
#include "carehub/v1/wire.pb.h"
#include "sections.h"

namespace carehub::bench {
namespace {

using Steady = std::chrono::steady_clock;
double Since(Steady::time_point t) {
  return std::chrono::duration<double>(Steady::now() - t).count();
}

// Distinct serialized synthetic events (~300 bytes), reused cyclically by the micro-benchmarks.
std::vector<std::string> SampleEvents(size_t n) {
  SyntheticOptions so;
  so.seed = 9;
  so.population = 200'000;
  so.id_prefix = "lim-";
  SyntheticGenerator gen(so);
  std::vector<std::string> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(gen.Next().SerializeAsString());
  }
  return out;
}

// DEALER -> ROUTER over tcp loopback, Publish frames of 1000 events, one small reply per frame,
// `window` frames in flight. Returns events/s.
double ZmqThroughput(const std::vector<std::string>& events, uint64_t total_events,
                     uint32_t window) {
  const size_t per_frame = 1000;
  std::vector<std::string> frames;
  {
    v1::Frame frame;
    frame.set_version(v1::PROTOCOL_VERSION_1);
    auto* publish = frame.mutable_publish();
    for (size_t f = 0; f < 64; ++f) {
      publish->clear_events();
      publish->set_batch_id(f + 1);
      for (size_t i = 0; i < per_frame; ++i) {
        publish->add_events()->ParseFromString(events[(f * per_frame + i) % events.size()]);
      }
      frames.push_back(frame.SerializeAsString());
    }
  }
  const uint64_t n_frames = std::max<uint64_t>(1, total_events / per_frame);
  zmq::context_t server_ctx(1), client_ctx(1);
  zmq::socket_t router(server_ctx, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.bind("tcp://127.0.0.1:0");
  std::string endpoint = router.get(zmq::sockopt::last_endpoint);
  std::thread server([&] {
    for (uint64_t i = 0; i < n_frames; ++i) {
      zmq::message_t id, body;
      (void)router.recv(id);
      (void)router.recv(body);
      // Touch the payload as a receiver would before answering.
      uint64_t ack = i + body.size();
      router.send(id, zmq::send_flags::sndmore);
      router.send(zmq::buffer(&ack, sizeof ack), zmq::send_flags::none);
    }
  });
  zmq::socket_t dealer(client_ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect(endpoint);
  auto t0 = Steady::now();
  uint64_t sent = 0, acked = 0;
  while (acked < n_frames) {
    while (sent < n_frames && sent - acked < window) {
      dealer.send(zmq::buffer(frames[sent % frames.size()]), zmq::send_flags::none);
      ++sent;
    }
    zmq::message_t reply;
    (void)dealer.recv(reply);
    ++acked;
  }
  double s = Since(t0);
  server.join();
  return n_frames * per_frame / s;
}

// RocksDB WriteBatch(1000) of sequential big-endian keys with event-sized values: `total` events
// written once unmeasured, then `total` more measured, so the figure is a warm database's (its
// memtable memory touched, flushing as it fills), as the hub's ingest figure is (MeasureIngest).
Result<double> RocksDbSequential(const std::filesystem::path& dir,
                                 const std::vector<std::string>& events, uint64_t total,
                                 bool sync) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.write_buffer_size = 64ull << 20;
  rocksdb::DB* raw = nullptr;
  auto st = rocksdb::DB::Open(options, dir.string(), &raw);
  if (!st.ok()) {
    return Status::Error("rocksdb", st.ToString());
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  const auto write = [&](uint64_t first, uint64_t last) -> Status {
    for (uint64_t seq = first; seq <= last;) {
      rocksdb::WriteBatch batch;
      for (int i = 0; i < 1000 && seq <= last; ++i, ++seq) {
        batch.Put(hub::EncodeSeq(seq), events[seq % events.size()]);
      }
      st = db->Write(wo, &batch);
      if (!st.ok()) {
        return Status::Error("rocksdb", st.ToString());
      }
    }
    return Status::Ok();
  };
  CAREHUB_RETURN_IF_ERROR(write(1, total));  // warm-up
  auto t0 = Steady::now();
  CAREHUB_RETURN_IF_ERROR(write(total + 1, 2 * total));
  return total / Since(t0);
}

// Median time of a 4 KiB write + fdatasync: the storage's synchronous-write latency.
double SyncWriteMs(const std::filesystem::path& dir) {
  auto path = dir / "sync-probe";
  int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  if (fd < 0) {
    return 0;
  }
  std::string block(4096, 'x');
  std::vector<double> ms;
  for (int i = 0; i < 200; ++i) {
    auto t = Steady::now();
    if (pwrite(fd, block.data(), block.size(), static_cast<off_t>(i) * 4096) < 0 ||
        fdatasync(fd) != 0) {
      break;
    }
    ms.push_back(Since(t) * 1e3);
  }
  close(fd);
  return Percentile(&ms, 0.5);
}

}  // namespace

Status RunLimitsSection(BenchContext* ctx) {
  const auto& o = ctx->options;
  std::fprintf(stderr, "[limits] building sample events ...\n");
  auto events = SampleEvents(o.quick ? 20'000 : 200'000);
  size_t bytes = 0;
  for (const auto& e : events) {
    bytes += e.size();
  }
  ctx->report.Set("limits", "mean_event_bytes", static_cast<double>(bytes) / events.size());

  std::fprintf(stderr, "[limits] zeromq DEALER/ROUTER ...\n");
  ctx->report.Add("limits", "zmq_dealer_router_per_s",
                  "ZeroMQ DEALER->ROUTER, 1000/frame, window 64",
                  ZmqThroughput(events, o.limits_events, 64), "/s");

  for (bool sync : {false, true}) {
    auto dir = ctx->NewDir(sync ? "rocks-sync" : "rocks-nosync");
    std::fprintf(stderr, "[limits] rocksdb sequential WriteBatch(1000) sync=%d ...\n", sync);
    auto r = RocksDbSequential(dir, events, o.limits_events, sync);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    if (!r.ok()) {
      return r.status();
    }
    if (sync) {
      ctx->figures.rocksdb_sync_batch_per_s = *r;
    }
    ctx->report.Add(
        "limits", sync ? "rocksdb_seq_batch_sync_per_s" : "rocksdb_seq_batch_nosync_per_s",
        std::string("RocksDB seq WriteBatch(1000) sync=") + (sync ? "true" : "false"), *r, "/s");
  }

  std::fprintf(stderr, "[limits] protobuf parse ...\n");
  v1::Event parsed;
  const uint64_t parses = o.quick ? 200'000 : 2'000'000;
  auto t0 = Steady::now();
  uint64_t ok = 0;
  for (uint64_t i = 0; i < parses; ++i) {
    ok += parsed.ParseFromString(events[i % events.size()]);
  }
  double parse_s = Since(t0);
  if (ok != parses) {
    return Status::Error("bench_failed", "protobuf parse failed");
  }
  ctx->report.Add("limits", "protobuf_parse_per_s", "protobuf parse, reused message",
                  parses / parse_s, "/s");
  ctx->report.Add("limits", "protobuf_parse_ns", "protobuf parse time per event",
                  parse_s * 1e9 / parses, "ns");

  auto dir = ctx->NewDir("sync-probe");
  ctx->report.Add("limits", "sync_write_4k_ms", "4 KiB write + fdatasync (median)",
                  SyncWriteMs(dir), "ms");
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return Status::Ok();
}

}  // namespace carehub::bench
