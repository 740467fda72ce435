#include "ingest_load.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>
#include <zmq.hpp>

#include "carehub/core/synthetic.h"
#include "carehub/v1/wire.pb.h"

namespace carehub::bench {
namespace {

using Steady = std::chrono::steady_clock;

struct ConnectionResult {
  uint64_t sent = 0, accepted = 0, duplicate = 0, other = 0;
  std::map<std::string, uint64_t> other_by_reason;
  uint64_t max_hub_seq = 0;
  std::vector<double> ack_ms;
};

// Text of a 128-bit value derived from `id`, formatted as a UUID (8-4-4-4-12 hex digits).
std::string UuidOf(const std::string& id) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a, then two splitmix64 rounds
  for (unsigned char c : id) {
    h = (h ^ c) * 1099511628211ull;
  }
  auto mix = [](uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  const uint64_t a = mix(h), b = mix(h + 0x9e3779b97f4a7c15ull);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<uint32_t>(a >> 32),
                static_cast<uint32_t>((a >> 16) & 0xffff), static_cast<uint32_t>(a & 0xffff),
                static_cast<uint32_t>(b >> 48),
                static_cast<unsigned long long>(b & 0xffffffffffffull));
  return buf;
}

// The fresh events of one connection of a load, in order: the same options give the same events.
class EventSource {
 public:
  EventSource(const IngestLoadOptions& o, uint32_t conn)
      : gen_(GeneratorOptions(o, conn)), shape_(o.id_shape), prefix_(o.id_prefix) {}

  v1::Event Next() {
    v1::Event e = gen_.Next();
    if (shape_ == IdShape::kRandom) {
      auto* env = e.mutable_envelope();
      env->set_event_id(prefix_ + UuidOf(env->event_id()));
      if (!env->supersedes_event_id().empty()) {
        env->set_supersedes_event_id(prefix_ + UuidOf(env->supersedes_event_id()));
      }
    }
    return e;
  }

 private:
  static SyntheticOptions GeneratorOptions(const IngestLoadOptions& o, uint32_t conn) {
    SyntheticOptions so;
    so.seed = o.seed * 1000 + conn;
    so.population = 200'000;
    so.id_prefix = o.id_prefix + std::to_string(conn) + "-";
    if (!o.publishers.empty()) {
      so.publishers = o.publishers;
    }
    so.now = GenerationDay();
    return so;
  }

  SyntheticGenerator gen_;
  IdShape shape_;
  std::string prefix_;
};

// Pre-builds the serialized Publish frames of one connection, so the load generator spends its
// time sending, not generating.
std::vector<std::string> BuildFrames(const IngestLoadOptions& o, uint32_t conn, uint64_t events) {
  EventSource fresh(o, conn);
  // Resends of a stored load: every stride-th of its events on the matching connection.
  std::optional<EventSource> stored;
  uint64_t stored_left = 0, stride = 1;
  if (o.stored != nullptr && o.stored_resend_ratio > 0 && o.stored->connections > 0) {
    stored.emplace(*o.stored, conn % o.stored->connections);
    stored_left = o.stored->events / o.stored->connections;
    const auto picks = static_cast<uint64_t>(static_cast<double>(events) * o.stored_resend_ratio);
    stride = std::max<uint64_t>(1, stored_left / std::max<uint64_t>(1, picks));
  }
  std::mt19937_64 rng(o.seed * 1000 + conn);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<v1::Event> recent;
  std::vector<std::string> frames;
  v1::Frame frame;
  frame.set_version(v1::PROTOCOL_VERSION_1);
  auto* publish = frame.mutable_publish();
  uint64_t batch_id = 1;
  for (uint64_t i = 0; i < events; ++i) {
    const double x = u(rng);
    if (stored && x < o.stored_resend_ratio && stored_left >= stride) {
      for (uint64_t skip = 1; skip < stride; ++skip) {
        (void)stored->Next();
      }
      stored_left -= stride;
      *publish->add_events() = stored->Next();
    } else if (!recent.empty() && x < o.stored_resend_ratio + o.resend_ratio) {
      *publish->add_events() = recent[rng() % recent.size()];
    } else {
      v1::Event e = fresh.Next();
      if (recent.size() < 5000) {
        recent.push_back(e);
      } else {
        recent[rng() % recent.size()] = e;
      }
      *publish->add_events() = std::move(e);
    }
    if (static_cast<uint32_t>(publish->events_size()) == o.batch_events || i + 1 == events) {
      publish->set_batch_id(batch_id++);
      frames.push_back(frame.SerializeAsString());
      publish->clear_events();
    }
  }
  return frames;
}

ConnectionResult RunConnection(const IngestLoadOptions& o, const std::vector<std::string>& frames,
                               Steady::time_point start, double per_conn_rate) {
  ConnectionResult r;
  zmq::context_t ctx(1);
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::sndhwm, 0);
  s.set(zmq::sockopt::rcvhwm, 0);
  if (!o.curve_server.empty()) {
    s.set(zmq::sockopt::curve_serverkey, o.curve_server);
    s.set(zmq::sockopt::curve_publickey, o.curve_public);
    s.set(zmq::sockopt::curve_secretkey, o.curve_secret);
  }
  s.connect(o.endpoint);
  std::unordered_map<uint64_t, Steady::time_point> inflight;
  size_t next = 0;
  size_t answered = 0;
  uint64_t events_sent = 0;
  auto deadline = Steady::now() + o.answer_timeout;
  while (answered < frames.size() && Steady::now() < deadline) {
    while (next < frames.size() && inflight.size() < o.window_batches) {
      if (per_conn_rate > 0) {
        double due = events_sent / per_conn_rate;
        if (std::chrono::duration<double>(Steady::now() - start).count() < due) {
          break;
        }
      }
      s.send(zmq::buffer(frames[next]), zmq::send_flags::none);
      inflight[next + 1] = Steady::now();
      events_sent += o.batch_events;
      ++next;
    }
    zmq::message_t msg;
    auto got = s.recv(msg, per_conn_rate > 0 ? zmq::recv_flags::dontwait : zmq::recv_flags::none);
    if (!got) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      continue;
    }
    v1::Frame reply;
    if (!reply.ParseFromArray(msg.data(), static_cast<int>(msg.size())) ||
        !reply.has_publish_result()) {
      continue;
    }
    auto it = inflight.find(reply.publish_result().batch_id());
    if (it == inflight.end()) {
      continue;
    }
    r.ack_ms.push_back(
        std::chrono::duration<double, std::milli>(Steady::now() - it->second).count());
    inflight.erase(it);
    ++answered;
    for (const auto& res : reply.publish_result().results()) {
      ++r.sent;
      r.max_hub_seq = std::max<uint64_t>(r.max_hub_seq, res.hub_seq());
      if (res.status() == v1::EventResult::ACCEPTED) {
        ++r.accepted;
      } else if (res.status() == v1::EventResult::DUPLICATE) {
        ++r.duplicate;
      } else {
        ++r.other;
        ++r.other_by_reason[v1::EventResult::Status_Name(res.status()) + " " + res.reason()];
      }
    }
  }
  return r;
}

}  // namespace

// Dated from the clock at each generation, a --growth run that crossed midnight resent its fill's
// events a day later, and the hub rightly answered them CONFLICT (a run failed so at 00:00 UTC on
// 2026-12-07: "11903 not accepted").
std::chrono::system_clock::time_point GenerationDay() {
  static const auto day = std::chrono::system_clock::time_point(
      std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now()));
  return day;
}

IngestLoadResult RunIngestLoad(const IngestLoadOptions& o) {
  std::vector<std::vector<std::string>> frames(o.connections);
  {
    std::vector<std::thread> builders;
    for (uint32_t c = 0; c < o.connections; ++c) {
      builders.emplace_back([&, c] { frames[c] = BuildFrames(o, c, o.events / o.connections); });
    }
    for (auto& t : builders) {
      t.join();
    }
  }
  std::vector<ConnectionResult> results(o.connections);
  auto start = Steady::now();
  std::vector<std::thread> threads;
  for (uint32_t c = 0; c < o.connections; ++c) {
    threads.emplace_back([&, c] {
      results[c] = RunConnection(o, frames[c], start, o.rate > 0 ? o.rate / o.connections : 0);
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  IngestLoadResult total;
  total.seconds = std::chrono::duration<double>(Steady::now() - start).count();
  std::vector<double> lat;
  for (auto& r : results) {
    total.sent += r.sent;
    total.accepted += r.accepted;
    total.duplicate += r.duplicate;
    total.other += r.other;
    for (const auto& [reason, n] : r.other_by_reason) {
      total.other_by_reason[reason] += n;
    }
    total.max_hub_seq = std::max(total.max_hub_seq, r.max_hub_seq);
    lat.insert(lat.end(), r.ack_ms.begin(), r.ack_ms.end());
  }
  std::sort(lat.begin(), lat.end());
  if (!lat.empty()) {
    total.ack_p50_ms = lat[lat.size() / 2];
    total.ack_p99_ms = lat[std::min(lat.size() - 1, lat.size() * 99 / 100)];
  }
  return total;
}

}  // namespace carehub::bench
