#include "ingest_load.h"

#include <algorithm>
#include <chrono>
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
  uint64_t max_hub_seq = 0;
  std::vector<double> ack_ms;
};

// Pre-builds the serialized Publish frames of one connection, so the load generator spends its
// time sending, not generating.
std::vector<std::string> BuildFrames(const IngestLoadOptions& o, uint32_t conn, uint64_t events) {
  SyntheticOptions so;
  so.seed = o.seed * 1000 + conn;
  so.population = 200'000;
  so.id_prefix = o.id_prefix + std::to_string(conn) + "-";
  if (!o.publishers.empty()) {
    so.publishers = o.publishers;
  }
  so.now = std::chrono::system_clock::time_point(
      std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now()));
  SyntheticGenerator gen(so);
  std::mt19937_64 rng(so.seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<v1::Event> recent;
  std::vector<std::string> frames;
  v1::Frame frame;
  frame.set_version(v1::PROTOCOL_VERSION_1);
  auto* publish = frame.mutable_publish();
  uint64_t batch_id = 1;
  for (uint64_t i = 0; i < events; ++i) {
    if (!recent.empty() && u(rng) < o.resend_ratio) {
      *publish->add_events() = recent[rng() % recent.size()];
    } else {
      v1::Event e = gen.Next();
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
  auto deadline = Steady::now() + std::chrono::minutes(10);
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
      }
    }
  }
  return r;
}

}  // namespace

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
