// Section 7 of carehub-bench: NATS JetStream (file storage, one replica) with the same events:
// async publish with Nats-Msg-Id deduplication, then consumers reading the stream back.
#include <nats/nats.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <vector>

#include "carehub/core/event_types.h"
#include "carehub/core/synthetic.h"
#include "carehub/v1/event.pb.h"
#include "harness/child_process.h"
#include "sections.h"

namespace carehub::bench {
namespace {

using Steady = std::chrono::steady_clock;
double Since(Steady::time_point t) {
  return std::chrono::duration<double>(Steady::now() - t).count();
}
int64_t NowNs() { return Steady::now().time_since_epoch().count(); }

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

// The nats-server child; SIGTERM and reap on destruction.
class NatsServer {
 public:
  ~NatsServer() {
    if (child_) {
      child_->Signal(SIGTERM);
      (void)child_->Wait(std::chrono::seconds(10));  // then ~ChildProcess kills it if need be
    }
  }
  // `binary`: a path, or a name looked up on $PATH. The test harness's child process, so the
  // kernel kills nats-server if the benchmark dies.
  Status Start(const std::string& binary, const std::filesystem::path& dir) {
    port_ = FreePort();
    std::filesystem::create_directories(dir / "store");
    const auto log = dir / "nats.log";
    auto spawned = itest::ChildProcess::Spawn(
        {itest::SystemTool(binary), "-js", "-sd", (dir / "store").string(), "-a", "127.0.0.1", "-p",
         std::to_string(port_)},
        log, log);
    if (!spawned.ok()) {
      return Status::Error("bench_setup",
                           "cannot run " + binary + ": " + spawned.status().message());
    }
    child_.emplace(std::move(spawned).value());
    return Status::Ok();
  }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

 private:
  std::optional<itest::ChildProcess> child_;
  int port_ = 0;
};

struct Message {
  std::string subject;
  std::string id;
  std::string bytes;
};

// The same mix as the carehub ingest load: synthetic events with `resend_ratio` resends of recent
// events (same id, same bytes). `fanout`: the fan-out section's publishers, on the subjects its
// equivalent consumers filter (NatsSubject); else the generator's default publishers on
// "<subject_root>.<publisher>". Ids start with `id_prefix`.
std::vector<Message> BuildMessages(uint64_t n, double resend_ratio, bool fanout,
                                   const std::string& id_prefix,
                                   const std::string& subject_root = "events") {
  SyntheticOptions so;
  so.seed = 1000;
  so.population = 200'000;
  so.id_prefix = id_prefix;
  if (fanout) {
    so.publishers = BenchPublishers();
  }
  SyntheticGenerator gen(so);
  std::mt19937_64 rng(so.seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<Message> out;
  out.reserve(n);
  std::vector<size_t> recent;
  for (uint64_t i = 0; i < n; ++i) {
    if (!recent.empty() && u(rng) < resend_ratio) {
      out.push_back(out[recent[rng() % recent.size()]]);
      continue;
    }
    auto e = gen.Next();
    out.push_back({fanout ? NatsSubject(e.envelope().publisher_ods(), EventTypeName(e))
                          : subject_root + "." + e.envelope().publisher_ods(),
                   e.envelope().publisher_ods() + ":" + e.envelope().event_id(),
                   e.SerializeAsString()});
    if (recent.size() < 5000) {
      recent.push_back(out.size() - 1);
    } else {
      recent[rng() % recent.size()] = out.size() - 1;
    }
  }
  return out;
}

struct PublishState {
  std::vector<int64_t> sent_ns;
  std::mutex mu;
  std::vector<double> ack_ms;
  std::atomic<uint64_t> accepted{0}, duplicate{0}, failed{0};

  // Forgets every ack counted so far (between publishes: PublishAll has returned).
  void Reset() {
    std::lock_guard lock(mu);
    ack_ms.clear();
    accepted = 0;
    duplicate = 0;
    failed = 0;
  }
};

void OnAck(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
  auto* st = static_cast<PublishState*>(closure);
  const char* idx = nullptr;
  if (natsMsgHeader_Get(msg, "Bench-Idx", &idx) == NATS_OK && idx != nullptr) {
    size_t i = std::strtoull(idx, nullptr, 10);
    if (i < st->sent_ns.size()) {
      std::lock_guard lock(st->mu);
      st->ack_ms.push_back((NowNs() - st->sent_ns[i]) / 1e6);
    }
  }
  if (pae != nullptr || pa == nullptr) {
    ++st->failed;
  } else if (pa->Duplicate) {
    ++st->duplicate;
  } else {
    ++st->accepted;
  }
  natsMsg_Destroy(msg);
}

std::string NatsError(const char* what, natsStatus s) {
  return std::string(what) + ": " + natsStatus_GetText(s) + " " + nats_GetLastError(nullptr);
}

// A file-stored, single-replica stream `name` over `subjects` (e.g. "events.>").
Status AddFileStream(jsCtx* js, const char* name, const char* subjects) {
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = name;
  const char* list[] = {subjects};
  cfg.Subjects = list;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  cfg.Replicas = 1;
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_AddStream(&si, js, &cfg, nullptr, &jerr);
  jsStreamInfo_Destroy(si);
  if (s != NATS_OK) {
    return Status::Error("bench_setup", NatsError((std::string("add stream ") + name).c_str(), s));
  }
  return Status::Ok();
}

// True when `subject` matches the JetStream filter: tokens split on '.', '*' matches one token,
// a final '>' one or more.
bool SubjectMatches(std::string_view filter, std::string_view subject) {
  while (true) {
    const size_t fdot = filter.find('.');
    const size_t sdot = subject.find('.');
    const std::string_view ftok = filter.substr(0, fdot);
    const std::string_view stok = subject.substr(0, sdot);
    if (ftok == ">") {
      return !subject.empty();
    }
    if (ftok != "*" && ftok != stok) {
      return false;
    }
    if (fdot == std::string_view::npos || sdot == std::string_view::npos) {
      return fdot == std::string_view::npos && sdot == std::string_view::npos;
    }
    filter.remove_prefix(fdot + 1);
    subject.remove_prefix(sdot + 1);
  }
}

// Publishes `msgs` asynchronously with a Nats-Msg-Id each (acks land in `st`, the js context's
// ack closure); returns when every ack is in.
Status PublishAll(jsCtx* js, const std::vector<Message>& msgs, PublishState* st) {
  st->sent_ns.assign(msgs.size(), 0);
  natsStatus s = NATS_OK;
  for (size_t i = 0; i < msgs.size(); ++i) {
    natsMsg* m = nullptr;
    natsMsg_Create(&m, msgs[i].subject.c_str(), nullptr, msgs[i].bytes.data(),
                   static_cast<int>(msgs[i].bytes.size()));
    natsMsgHeader_Set(m, "Nats-Msg-Id", msgs[i].id.c_str());
    natsMsgHeader_Set(m, "Bench-Idx", std::to_string(i).c_str());
    st->sent_ns[i] = NowNs();
    if ((s = js_PublishMsgAsync(js, &m, nullptr)) != NATS_OK) {
      natsMsg_Destroy(m);
      return Status::Error("bench_failed", NatsError("publish", s));
    }
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = 120'000;
  if ((s = js_PublishAsyncComplete(js, &po)) != NATS_OK) {
    return Status::Error("bench_failed", NatsError("publish complete", s));
  }
  return Status::Ok();
}

// The fan-out section's workload on JetStream: a stream FANOUT, ten pull consumers (batches of
// 1,000, AckAll, every event parsed) with the subject filters equivalent to the fan-out section's
// ten subscriptions, reading live while the same kind of events (fanout_events, same resends) are
// published. Deliveries/s from the first publish until every consumer has its events.
Status TenConsumers(BenchContext* ctx, jsCtx* js, PublishState* st) {
  const auto& o = ctx->options;
  CAREHUB_RETURN_IF_ERROR(AddFileStream(js, "FANOUT", "fan.>"));
  natsStatus s = NATS_OK;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  std::fprintf(stderr, "[nats] building %lu fan-out messages ...\n", o.fanout_events);
  const auto msgs = BuildMessages(o.fanout_events, o.resend_ratio, /*fanout=*/true, "natsfan-");
  const auto filters = FanoutNatsFilters(o.fanout_one_view);
  std::vector<uint64_t> expected(filters.size(), 0);
  {
    std::unordered_set<std::string_view> ids;
    for (const auto& m : msgs) {
      if (!ids.insert(m.id).second) {
        continue;
      }
      for (size_t i = 0; i < filters.size(); ++i) {
        expected[i] += SubjectMatches(filters[i].nats_filter, m.subject);
      }
    }
  }
  struct Consumer {
    natsSubscription* sub = nullptr;
    std::atomic<uint64_t> got{0};
    double done_s = -1;
    std::string error;
    std::thread thread;
  };
  std::vector<std::unique_ptr<Consumer>> consumers;
  for (size_t i = 0; i < filters.size(); ++i) {
    auto c = std::make_unique<Consumer>();
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = "FANOUT";
    so.Config.AckPolicy = js_AckAll;
    so.Config.DeliverPolicy = js_DeliverAll;
    so.Config.MaxAckPending = 100'000;
    const std::string durable = "fan-" + std::to_string(i);
    if ((s = js_PullSubscribe(&c->sub, js, filters[i].nats_filter.c_str(), durable.c_str(), nullptr,
                              &so, &jerr)) != NATS_OK) {
      for (auto& made : consumers) {
        natsSubscription_Destroy(made->sub);
      }
      return Status::Error("bench_failed", NatsError("pull subscribe (fan-out)", s));
    }
    consumers.push_back(std::move(c));
  }
  std::atomic<bool> started{false};
  Steady::time_point t0;
  for (size_t i = 0; i < consumers.size(); ++i) {
    consumers[i]->thread = std::thread([&, i] {
      Consumer& c = *consumers[i];
      v1::Event e;
      const auto deadline = Steady::now() + std::chrono::seconds(600);
      while (c.got < expected[i] && Steady::now() < deadline) {
        natsMsgList list{};
        jsErrCode err = static_cast<jsErrCode>(0);
        natsStatus fs = natsSubscription_Fetch(&list, c.sub, 1000, 1000, &err);
        if (fs == NATS_TIMEOUT) {
          continue;
        }
        if (fs != NATS_OK) {
          c.error = NatsError("fetch (fan-out)", fs);
          return;
        }
        for (int k = 0; k < list.Count; ++k) {
          (void)e.ParseFromArray(natsMsg_GetData(list.Msgs[k]),
                                 natsMsg_GetDataLength(list.Msgs[k]));
        }
        c.got += list.Count;
        if (list.Count > 0) {
          natsMsg_Ack(list.Msgs[list.Count - 1], nullptr);
        }
        natsMsgList_Destroy(&list);
      }
      if (c.got < expected[i]) {
        c.error = "timed out";
        return;
      }
      while (!started.load()) {
        std::this_thread::yield();
      }
      c.done_s = Since(t0);
    });
  }
  std::fprintf(stderr, "[nats] ten filtered consumers live while publishing ...\n");
  st->accepted = 0;
  st->duplicate = 0;
  st->failed = 0;
  t0 = Steady::now();
  started = true;
  Status published = PublishAll(js, msgs, st);
  const double publish_s = Since(t0);
  uint64_t total = 0;
  double last_s = 0;
  Status result = published;
  for (size_t i = 0; i < consumers.size(); ++i) {
    consumers[i]->thread.join();
    natsSubscription_Destroy(consumers[i]->sub);
    total += consumers[i]->got;
    last_s = std::max(last_s, consumers[i]->done_s);
    if (!consumers[i]->error.empty() && result.ok()) {
      result = Status::Error("bench_failed", filters[i].subscription + ": " + consumers[i]->error);
    }
    ctx->report.Set("nats_fanout_consumers", filters[i].subscription,
                    {{"filter", filters[i].nats_filter},
                     {"delivered", consumers[i]->got.load()},
                     {"expected", expected[i]}});
  }
  if (!result.ok()) {
    return result;
  }
  const double rate = last_s > 0 ? total / last_s : 0;
  ctx->figures.nats_ten_consumers_per_s = rate;
  ctx->report.Add("nats", "ten_consumers_deliveries_per_s",
                  "JetStream, 10 filtered pull consumers live: deliveries/s (to drained)", rate,
                  "/s");
  ctx->report.Add("nats", "ten_consumers_publish_accepted_per_s",
                  "JetStream publish with 10 live consumers, accepted/s",
                  publish_s > 0 ? st->accepted / publish_s : 0, "/s");
  ctx->report.Set("nats", "ten_consumers_total_deliveries", total);
  return Status::Ok();
}

}  // namespace

Status RunNatsSection(BenchContext* ctx) {
  const auto& o = ctx->options;
  auto dir = ctx->NewDir("nats");
  NatsServer server;
  auto started = server.Start(o.nats_server, dir);
  if (!started.ok()) {
    return started;
  }
  natsConnection* conn = nullptr;
  natsStatus s = NATS_ERR;
  for (int i = 0; i < 100 && s != NATS_OK; ++i) {
    s = natsConnection_ConnectTo(&conn, server.url().c_str());
    if (s != NATS_OK) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  if (s != NATS_OK) {
    return Status::Error("bench_setup", NatsError("cannot connect to nats-server", s));
  }
  PublishState st;
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.MaxPending = 8000;
  jo.PublishAsync.AckHandler = OnAck;
  jo.PublishAsync.AckHandlerClosure = &st;
  jo.Wait = 30'000;
  jsCtx* js = nullptr;
  Status result = Status::Ok();
  if ((s = natsConnection_JetStream(&js, conn, &jo)) != NATS_OK) {
    natsConnection_Destroy(conn);
    return Status::Error("bench_setup", NatsError("jetstream", s));
  }
  result = AddFileStream(js, "CAREHUB", "events.>");
  jsErrCode jerr = static_cast<jsErrCode>(0);

  if (result.ok()) {
    std::fprintf(stderr, "[nats] building %lu messages ...\n", o.nats_events);
    auto msgs = BuildMessages(o.nats_events, o.resend_ratio, /*fanout=*/false, "nats-");
    // The same publish, unmeasured, into a stream of its own first: the server's figure is a warm
    // process's, as the hub's is (MeasureIngest in hub_sections.cc), and the consumers below read
    // only the measured stream.
    result = AddFileStream(js, "WARMUP", "warmup.>");
    if (result.ok()) {
      std::fprintf(stderr, "[nats] warm-up publish (not measured) ...\n");
      const auto warmup =
          BuildMessages(o.nats_events, o.resend_ratio, /*fanout=*/false, "nats-warmup-", "warmup");
      const auto t_warm = Steady::now();
      result = PublishAll(js, warmup, &st);  // the acks land in `st`, the context's closure
      ctx->report.Set("nats", "warmup_publish_accepted_per_s",
                      st.accepted / std::max(Since(t_warm), 1e-9));
      st.Reset();
    }
    std::fprintf(stderr, "[nats] js_PublishAsync with Nats-Msg-Id ...\n");
    auto t0 = Steady::now();
    if (result.ok()) {
      result = PublishAll(js, msgs, &st);
    }
    double pub_s = Since(t0);
    uint64_t unique = 0;
    {
      std::unordered_set<std::string_view> ids;
      for (const auto& m : msgs) {
        unique += ids.insert(m.id).second;
      }
    }
    if (result.ok()) {
      double rate = st.accepted / pub_s;
      ctx->figures.nats_publish_per_s = rate;
      ctx->report.Add("nats", "publish_accepted_per_s", "JetStream async publish, accepted/s", rate,
                      "/s");
      ctx->report.Add("nats", "publish_answered_per_s",
                      "JetStream async publish, answered/s (incl. dups)",
                      (st.accepted + st.duplicate) / pub_s, "/s");
      ctx->report.Add("nats", "ack_p50_ms", "JetStream publish ack p50",
                      Percentile(&st.ack_ms, 0.5), "ms");
      ctx->report.Add("nats", "ack_p99_ms", "JetStream publish ack p99",
                      Percentile(&st.ack_ms, 0.99), "ms");
      ctx->report.Set("nats", "accepted", st.accepted.load());
      ctx->report.Set("nats", "duplicate", st.duplicate.load());
      ctx->report.Set("nats", "failed", st.failed.load());
      ctx->report.Set("nats", "unique_ids", unique);
      ctx->report.Set("nats", "dedup_exact", st.accepted.load() == unique);
    }

    // Pull consumer, batches of 1000, one AckAll per batch (like a carehub cursor ack), parsing
    // every event as the carehub subscriber does.
    if (result.ok()) {
      std::fprintf(stderr, "[nats] pull consumer ...\n");
      jsSubOptions so;
      jsSubOptions_Init(&so);
      so.Stream = "CAREHUB";
      so.Config.AckPolicy = js_AckAll;
      so.Config.DeliverPolicy = js_DeliverAll;
      so.Config.MaxAckPending = 100'000;
      natsSubscription* sub = nullptr;
      if ((s = js_PullSubscribe(&sub, js, "events.>", "bench-pull", nullptr, &so, &jerr)) !=
          NATS_OK) {
        result = Status::Error("bench_failed", NatsError("pull subscribe", s));
      } else {
        v1::Event e;
        uint64_t got = 0, parsed = 0;
        auto tc = Steady::now();
        while (got < st.accepted && Since(tc) < 600) {
          natsMsgList list{};
          s = natsSubscription_Fetch(&list, sub, 1000, 5000, &jerr);
          if (s == NATS_TIMEOUT) {
            continue;
          }
          if (s != NATS_OK) {
            result = Status::Error("bench_failed", NatsError("fetch", s));
            break;
          }
          for (int i = 0; i < list.Count; ++i) {
            parsed += e.ParseFromArray(natsMsg_GetData(list.Msgs[i]),
                                       natsMsg_GetDataLength(list.Msgs[i]));
          }
          got += list.Count;
          if (list.Count > 0) {
            natsMsg_Ack(list.Msgs[list.Count - 1], nullptr);
          }
          natsMsgList_Destroy(&list);
        }
        double rate = got / Since(tc);
        ctx->figures.nats_consume_per_s = rate;
        ctx->report.Add("nats", "pull_consume_per_s", "JetStream pull consumer (1000, AckAll)/s",
                        rate, "/s");
        ctx->report.Set("nats", "pull_consumed", got);
        (void)parsed;
        natsSubscription_Destroy(sub);
      }
    }
    // Ordered push consumer: NATS's fastest way to read a stream (no acks at all).
    if (result.ok()) {
      std::fprintf(stderr, "[nats] ordered push consumer ...\n");
      jsSubOptions so;
      jsSubOptions_Init(&so);
      so.Stream = "CAREHUB";
      so.Ordered = true;
      natsSubscription* sub = nullptr;
      if ((s = js_SubscribeSync(&sub, js, "events.>", nullptr, &so, &jerr)) != NATS_OK) {
        result = Status::Error("bench_failed", NatsError("ordered subscribe", s));
      } else {
        natsSubscription_SetPendingLimits(sub, -1, -1);
        v1::Event e;
        uint64_t got = 0;
        auto tc = Steady::now();
        while (got < st.accepted && Since(tc) < 600) {
          natsMsg* m = nullptr;
          s = natsSubscription_NextMsg(&m, sub, 5000);
          if (s == NATS_TIMEOUT) {
            continue;
          }
          if (s != NATS_OK) {
            result = Status::Error("bench_failed", NatsError("next", s));
            break;
          }
          e.ParseFromArray(natsMsg_GetData(m), natsMsg_GetDataLength(m));
          ++got;
          natsMsg_Destroy(m);
        }
        ctx->report.Add("nats", "ordered_consume_per_s", "JetStream ordered push consumer/s",
                        got / Since(tc), "/s");
        natsSubscription_Destroy(sub);
      }
    }
    if (result.ok()) {
      result = TenConsumers(ctx, js, &st);
    }
  }
  jsCtx_Destroy(js);
  natsConnection_Destroy(conn);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return result;
}

void AddComparisons(BenchContext* ctx) {
  const auto& f = ctx->figures;
  if (f.ingest_fsync_per_s && f.nats_publish_per_s && *f.nats_publish_per_s > 0) {
    double r = *f.ingest_fsync_per_s / *f.nats_publish_per_s;
    ctx->report.Add("compare", "ingest_vs_nats", "carehub ingest (fsync) / NATS publish", r, "x",
                    ">= 3.5x", r >= 3.5);
  }
  if (f.fanout_per_s && f.nats_ten_consumers_per_s && *f.nats_ten_consumers_per_s > 0) {
    double r = *f.fanout_per_s / *f.nats_ten_consumers_per_s;
    ctx->report.Add("compare", "fanout_vs_nats", "carehub fan-out / NATS 10 filtered consumers", r,
                    "x", ">= 4x", r >= 4);
  }
  if (f.full_delivery_per_s && f.nats_consume_per_s && *f.nats_consume_per_s > 0) {
    ctx->report.Add("compare", "delivery_vs_nats", "carehub full catch-up / NATS pull consumer",
                    *f.full_delivery_per_s / *f.nats_consume_per_s, "x");
  }
  if (f.ingest_fsync_per_s && f.rocksdb_sync_batch_per_s && *f.rocksdb_sync_batch_per_s > 0) {
    double r = *f.ingest_fsync_per_s / *f.rocksdb_sync_batch_per_s;
    ctx->report.Add("compare", "ingest_vs_rocksdb_sync",
                    "carehub ingest (fsync) / raw RocksDB sync", r * 100, "%", ">= 70%", r >= 0.7);
  }
}

}  // namespace carehub::bench
