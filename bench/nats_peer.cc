// Section 7 of carehub-bench: NATS JetStream (file storage, one replica) with the same events:
// async publish with Nats-Msg-Id deduplication, then consumers reading the stream back.
#include <fcntl.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string_view>
#include <thread>
#include <unordered_set>

#include "carehub/core/synthetic.h"
#include "carehub/v1/event.pb.h"
#include "sections.h"

extern char** environ;

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
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
  }
  Status Start(const std::string& binary, const std::filesystem::path& dir) {
    port_ = FreePort();
    std::filesystem::create_directories(dir / "store");
    std::vector<std::string> args = {binary, "-js",       "-sd", (dir / "store").string(),
                                     "-a",   "127.0.0.1", "-p",  std::to_string(port_)};
    std::vector<char*> argv;
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    auto log = (dir / "nats.log").string();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT,
                                     0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    int rc = posix_spawnp(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      pid_ = -1;
      return Status::Error("bench_setup", "cannot run " + binary);
    }
    return Status::Ok();
  }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

struct Message {
  std::string subject;
  std::string id;
  std::string bytes;
};

// The same mix as the carehub ingest load: synthetic events with `resend_ratio` resends of recent
// events (same id, same bytes).
std::vector<Message> BuildMessages(uint64_t n, double resend_ratio) {
  SyntheticOptions so;
  so.seed = 1000;
  so.population = 200'000;
  so.id_prefix = "nats-";
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
    out.push_back({"events." + e.envelope().publisher_ods(),
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
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = "CAREHUB";
  const char* subjects[] = {"events.>"};
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  cfg.Replicas = 1;
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if ((s = js_AddStream(&si, js, &cfg, nullptr, &jerr)) != NATS_OK) {
    result = Status::Error("bench_setup", NatsError("add stream", s));
  }
  jsStreamInfo_Destroy(si);

  if (result.ok()) {
    std::fprintf(stderr, "[nats] building %lu messages ...\n", o.nats_events);
    auto msgs = BuildMessages(o.nats_events, o.resend_ratio);
    st.sent_ns.assign(msgs.size(), 0);
    std::fprintf(stderr, "[nats] js_PublishAsync with Nats-Msg-Id ...\n");
    auto t0 = Steady::now();
    for (size_t i = 0; i < msgs.size() && result.ok(); ++i) {
      natsMsg* m = nullptr;
      natsMsg_Create(&m, msgs[i].subject.c_str(), nullptr, msgs[i].bytes.data(),
                     static_cast<int>(msgs[i].bytes.size()));
      natsMsgHeader_Set(m, "Nats-Msg-Id", msgs[i].id.c_str());
      natsMsgHeader_Set(m, "Bench-Idx", std::to_string(i).c_str());
      st.sent_ns[i] = NowNs();
      if ((s = js_PublishMsgAsync(js, &m, nullptr)) != NATS_OK) {
        natsMsg_Destroy(m);
        result = Status::Error("bench_failed", NatsError("publish", s));
      }
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 120'000;
    if (result.ok() && (s = js_PublishAsyncComplete(js, &po)) != NATS_OK) {
      result = Status::Error("bench_failed", NatsError("publish complete", s));
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
