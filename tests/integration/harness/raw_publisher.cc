#include "harness/raw_publisher.h"

#include <map>
#include <zmq.hpp>

#include "harness/child_process.h"

namespace carehub::itest {
namespace {

using Clock = std::chrono::steady_clock;

std::chrono::milliseconds Remaining(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? left : std::chrono::milliseconds(0);
}

}  // namespace

RawPublisher::RawPublisher() = default;

RawPublisher::~RawPublisher() {
  // Linger 0 (set at connect): unsent frames are dropped, the context closes at once.
  socket_.reset();
  context_.reset();
}

Result<std::unique_ptr<RawPublisher>> RawPublisher::Connect(const std::string& endpoint,
                                                            RawPublisherOptions options) {
  std::unique_ptr<RawPublisher> p(new RawPublisher());
  try {
    p->context_ = std::make_unique<zmq::context_t>(1);
    p->socket_ = std::make_unique<zmq::socket_t>(*p->context_, zmq::socket_type::dealer);
    p->socket_->set(zmq::sockopt::linger, 0);
    p->socket_->set(zmq::sockopt::sndtimeo, static_cast<int>(options.send_timeout.count()));
    p->socket_->set(zmq::sockopt::maxmsgsize, options.max_receive_bytes);
    p->socket_->set(zmq::sockopt::rcvhwm, 0);
    p->socket_->set(zmq::sockopt::sndhwm, 0);
    p->socket_->connect(endpoint);
  } catch (const zmq::error_t& e) {
    return Status::Error("connect_failed", "cannot connect to " + endpoint + ": " + e.what());
  }
  return p;
}

Status RawPublisher::SendBytes(std::string_view bytes) {
  try {
    auto sent = socket_->send(zmq::buffer(bytes.data(), bytes.size()), zmq::send_flags::none);
    if (!sent) {
      return Status::Error("send_timeout", "the message could not be queued in time");
    }
  } catch (const zmq::error_t& e) {
    return Status::Error("send_failed", e.what());
  }
  return Status::Ok();
}

Status RawPublisher::SendFrame(const v1::Frame& frame) {
  return SendBytes(frame.SerializeAsString());
}

Result<uint64_t> RawPublisher::SendPublish(std::span<const v1::Event> events) {
  v1::Frame frame;
  frame.set_version(v1::PROTOCOL_VERSION_1);
  auto* publish = frame.mutable_publish();
  const uint64_t id = next_batch_id_++;
  publish->set_batch_id(id);
  publish->mutable_events()->Reserve(static_cast<int>(events.size()));
  for (const auto& e : events) {
    *publish->add_events() = e;
  }
  Status s = SendFrame(frame);
  if (!s.ok()) {
    return s;
  }
  return id;
}

Result<std::optional<v1::Frame>> RawPublisher::Receive(std::chrono::milliseconds timeout) {
  if (!stash_.empty()) {
    v1::Frame f = std::move(stash_.front());
    stash_.pop_front();
    return std::optional<v1::Frame>(std::move(f));
  }
  try {
    zmq::pollitem_t items[] = {{socket_->handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, timeout);
    if (!(items[0].revents & ZMQ_POLLIN)) {
      return std::optional<v1::Frame>();
    }
    zmq::message_t msg;
    auto got = socket_->recv(msg, zmq::recv_flags::dontwait);
    if (!got) {
      return std::optional<v1::Frame>();
    }
    v1::Frame frame;
    if (!frame.ParseFromArray(msg.data(), static_cast<int>(msg.size()))) {
      return Status::Error("bad_answer", "the hub sent " + std::to_string(msg.size()) +
                                             " bytes that are not a "
                                             "carehub.v1.Frame");
    }
    return std::optional<v1::Frame>(std::move(frame));
  } catch (const zmq::error_t& e) {
    return Status::Error("receive_failed", e.what());
  }
}

Result<v1::PublishResult> RawPublisher::Publish(std::span<const v1::Event> events,
                                                std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + Scaled(timeout);
  auto id = SendPublish(events);
  if (!id.ok()) {
    return id.status();
  }
  std::deque<v1::Frame> unrelated;
  Result<v1::PublishResult> outcome =
      Status::Error("timeout", "no answer to batch " + std::to_string(id.value()) + " within " +
                                   std::to_string(timeout.count()) + " ms");
  while (Clock::now() < deadline) {
    auto frame = Receive(Remaining(deadline));
    if (!frame.ok()) {
      outcome = frame.status();
      break;
    }
    if (!frame.value()) {
      continue;
    }
    v1::Frame& f = *frame.value();
    if (f.has_publish_result() && f.publish_result().batch_id() == id.value()) {
      outcome = std::move(*f.mutable_publish_result());
      break;
    }
    if (f.has_error() && f.error().batch_id() == id.value()) {
      outcome = Status::Error(f.error().code(), f.error().message());
      break;
    }
    unrelated.push_back(std::move(f));
  }
  for (auto& f : unrelated) {
    stash_.push_back(std::move(f));
  }
  return outcome;
}

Result<std::optional<v1::Error>> RawPublisher::WaitForError(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + Scaled(timeout);
  std::deque<v1::Frame> unrelated;
  Result<std::optional<v1::Error>> outcome = std::optional<v1::Error>();
  // Stashed frames are examined first, so an Error that arrived earlier is not missed.
  std::deque<v1::Frame> earlier = std::move(stash_);
  stash_.clear();
  for (auto& f : earlier) {
    if (f.has_error() && !outcome.value()) {
      outcome = std::optional<v1::Error>(f.error());
    } else {
      unrelated.push_back(std::move(f));
    }
  }
  while (!outcome.value() && Clock::now() < deadline) {
    auto frame = Receive(Remaining(deadline));
    if (!frame.ok()) {
      outcome = frame.status();
      break;
    }
    if (!frame.value()) {
      continue;
    }
    if (frame.value()->has_error()) {
      outcome = std::optional<v1::Error>(frame.value()->error());
      break;
    }
    unrelated.push_back(std::move(*frame.value()));
  }
  for (auto& f : unrelated) {
    stash_.push_back(std::move(f));
  }
  return outcome;
}

Result<std::vector<v1::EventResult>> RawPublisher::PublishAll(std::span<const v1::Event> events,
                                                              size_t batch_size,
                                                              size_t max_inflight,
                                                              std::chrono::milliseconds timeout) {
  if (batch_size == 0 || max_inflight == 0) {
    return Status::Error("bad_argument", "batch_size and max_inflight must be positive");
  }
  auto deadline = Clock::now() + Scaled(timeout);
  std::vector<v1::EventResult> results(events.size());
  // batch id -> (first event index, event count)
  std::map<uint64_t, std::pair<size_t, size_t>> inflight;
  size_t next = 0;
  size_t answered = 0;
  while (answered < events.size()) {
    if (Clock::now() >= deadline) {
      return Status::Error("timeout", std::to_string(events.size() - answered) + " of " +
                                          std::to_string(events.size()) +
                                          " events unanswered after " +
                                          std::to_string(timeout.count()) + " ms");
    }
    while (next < events.size() && inflight.size() < max_inflight) {
      size_t n = std::min(batch_size, events.size() - next);
      auto id = SendPublish(events.subspan(next, n));
      if (!id.ok()) {
        return id.status();
      }
      inflight[id.value()] = {next, n};
      next += n;
    }
    auto frame = Receive(std::min(Remaining(deadline), std::chrono::milliseconds(1000)));
    if (!frame.ok()) {
      return frame.status();
    }
    if (!frame.value()) {
      continue;
    }
    v1::Frame& f = *frame.value();
    if (f.has_error()) {
      return Status::Error(f.error().code(), "batch " + std::to_string(f.error().batch_id()) +
                                                 ": " + f.error().message());
    }
    if (!f.has_publish_result()) {
      continue;  // heartbeats and the like
    }
    auto it = inflight.find(f.publish_result().batch_id());
    if (it == inflight.end()) {
      return Status::Error("unexpected_answer", "answer for unknown batch " +
                                                    std::to_string(f.publish_result().batch_id()));
    }
    auto [first, count] = it->second;
    if (static_cast<size_t>(f.publish_result().results_size()) != count) {
      return Status::Error("bad_answer", "batch of " + std::to_string(count) + " got " +
                                             std::to_string(f.publish_result().results_size()) +
                                             " results");
    }
    for (size_t i = 0; i < count; ++i) {
      results[first + i] = std::move(*f.mutable_publish_result()->mutable_results(i));
    }
    answered += count;
    inflight.erase(it);
  }
  return results;
}

namespace {

template <typename Range>
ResultCounts CountRange(const Range& results) {
  ResultCounts c;
  for (const auto& r : results) {
    switch (r.status()) {
      case v1::EventResult::ACCEPTED:
        ++c.accepted;
        break;
      case v1::EventResult::DUPLICATE:
        ++c.duplicate;
        break;
      case v1::EventResult::REJECTED:
        ++c.rejected;
        break;
      case v1::EventResult::CONFLICT:
        ++c.conflict;
        break;
      case v1::EventResult::RETRY:
        ++c.retry;
        break;
      default:
        ++c.other;
        break;
    }
  }
  return c;
}

}  // namespace

ResultCounts CountResults(std::span<const v1::EventResult> results) { return CountRange(results); }

ResultCounts CountResults(const v1::PublishResult& result) { return CountRange(result.results()); }

Result<StreamReport> StreamUntilStopped(RawPublisher& pub, std::span<const v1::Event> events,
                                        size_t batch_size, size_t window,
                                        const std::atomic<bool>& stop,
                                        std::atomic<size_t>* answered_batches,
                                        std::chrono::milliseconds timeout,
                                        std::chrono::milliseconds quiet) {
  StreamReport out;
  std::map<uint64_t, std::pair<size_t, size_t>> inflight;
  auto quiet_since = Clock::now();
  bool stopping = false;
  const auto deadline = Clock::now() + Scaled(timeout);
  while (Clock::now() < deadline) {
    if (stop.load() && !stopping) {
      stopping = true;
      quiet_since = Clock::now();
    }
    while (!stopping && out.sent_events < events.size() && inflight.size() < window) {
      size_t n = std::min(batch_size, events.size() - out.sent_events);
      auto id = pub.SendPublish(events.subspan(out.sent_events, n));
      if (!id.ok()) {
        break;  // cannot queue more now (the hub may be gone): wait for answers or the stop
      }
      inflight[id.value()] = {out.sent_events, n};
      out.sent_events += n;
    }
    if (inflight.empty() && (stopping || out.sent_events == events.size())) {
      break;
    }
    auto frame = pub.Receive(std::chrono::milliseconds(20));
    if (!frame.ok()) {
      return frame.status();
    }
    if (!frame.value()) {
      if (stopping && Clock::now() - quiet_since > quiet) {
        break;
      }
      continue;
    }
    quiet_since = Clock::now();
    v1::Frame& f = *frame.value();
    if (f.has_error()) {
      return Status::Error(f.error().code(), "batch " + std::to_string(f.error().batch_id()) +
                                                 ": " + f.error().message());
    }
    if (!f.has_publish_result()) {
      continue;
    }
    auto it = inflight.find(f.publish_result().batch_id());
    if (it == inflight.end()) {
      return Status::Error("unexpected_answer", "answer for unknown batch " +
                                                    std::to_string(f.publish_result().batch_id()));
    }
    auto [first, count] = it->second;
    if (static_cast<size_t>(f.publish_result().results_size()) != count) {
      return Status::Error("bad_answer", "batch of " + std::to_string(count) + " got " +
                                             std::to_string(f.publish_result().results_size()) +
                                             " results");
    }
    for (size_t i = 0; i < count; ++i) {
      out.answers[first + i] = std::move(*f.mutable_publish_result()->mutable_results(i));
    }
    inflight.erase(it);
    ++out.answered_batches;
    if (answered_batches != nullptr) {
      answered_batches->fetch_add(1);
    }
  }
  return out;
}

Result<ResultCounts> PublishGenerated(RawPublisher& pub, size_t total, size_t batch_size,
                                      size_t window,
                                      const std::function<std::vector<v1::Event>(size_t)>& make,
                                      std::chrono::milliseconds timeout) {
  if (batch_size == 0 || window == 0) {
    return Status::Error("bad_argument", "batch_size and window must be positive");
  }
  const auto deadline = Clock::now() + Scaled(timeout);
  std::map<uint64_t, size_t> inflight;  // batch id -> event count
  ResultCounts counts;
  size_t sent = 0;
  size_t answered = 0;
  while (answered < total) {
    if (Clock::now() >= deadline) {
      return Status::Error("timeout", std::to_string(total - answered) + " of " +
                                          std::to_string(total) + " events unanswered after " +
                                          std::to_string(timeout.count()) + " ms");
    }
    while (sent < total && inflight.size() < window) {
      size_t n = std::min(batch_size, total - sent);
      auto batch = make(n);
      if (batch.size() != n) {
        return Status::Error("bad_argument", "make(" + std::to_string(n) + ") returned " +
                                                 std::to_string(batch.size()) + " events");
      }
      auto id = pub.SendPublish(batch);
      if (!id.ok()) {
        return id.status();
      }
      inflight[id.value()] = batch.size();
      sent += n;
    }
    auto frame = pub.Receive(std::min(Remaining(deadline), std::chrono::milliseconds(1000)));
    if (!frame.ok()) {
      return frame.status();
    }
    if (!frame.value()) {
      continue;
    }
    const v1::Frame& f = *frame.value();
    if (f.has_error()) {
      return Status::Error(f.error().code(), f.error().message());
    }
    if (!f.has_publish_result()) {
      continue;
    }
    auto it = inflight.find(f.publish_result().batch_id());
    if (it == inflight.end()) {
      return Status::Error("unexpected_answer", "answer for unknown batch " +
                                                    std::to_string(f.publish_result().batch_id()));
    }
    auto c = CountResults(f.publish_result());
    counts.accepted += c.accepted;
    counts.duplicate += c.duplicate;
    counts.rejected += c.rejected;
    counts.conflict += c.conflict;
    counts.retry += c.retry;
    counts.other += c.other;
    answered += it->second;
    inflight.erase(it);
  }
  return counts;
}

}  // namespace carehub::itest
