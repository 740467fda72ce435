#pragma once
// A bare ZeroMQ DEALER speaking the ingest protocol (proto/carehub/v1/wire.proto) byte for byte:
// no outbox, no resends, no hidden retries, so a test sees exactly what the hub answers. It can
// also send frames no real client would (garbage, truncated, oversized).
//
// Owns its own ZeroMQ context. Every call is bounded by a timeout. Not thread-safe: one thread per
// RawPublisher.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "carehub/core/status.h"
#include "carehub/v1/event.pb.h"
#include "carehub/v1/wire.pb.h"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace carehub::itest {

struct RawPublisherOptions {
  static RawPublisherOptions WithSendTimeout(std::chrono::milliseconds t) {
    RawPublisherOptions o;
    o.send_timeout = t;
    return o;
  }
  // A send that cannot be queued within this time fails (e.g. the hub is gone).
  std::chrono::milliseconds send_timeout{5000};
  // Messages above this are refused locally (ZMQ_MAXMSGSIZE on receive); -1: no limit.
  int64_t max_receive_bytes = -1;
};

class RawPublisher {
 public:
  // Connects (asynchronously, as ZeroMQ does) to the hub's ingest endpoint.
  static Result<std::unique_ptr<RawPublisher>> Connect(const std::string& endpoint,
                                                       RawPublisherOptions options = {});
  ~RawPublisher();
  RawPublisher(const RawPublisher&) = delete;
  RawPublisher& operator=(const RawPublisher&) = delete;

  // Sends arbitrary bytes as one message.
  Status SendBytes(std::string_view bytes);
  Status SendFrame(const v1::Frame& frame);
  // Sends Publish{batch_id, events} with a fresh batch id; returns that id.
  Result<uint64_t> SendPublish(std::span<const v1::Event> events);

  // The next frame from the hub (stashed frames first), or empty after `timeout`. A message that
  // is not a Frame protobuf is an error.
  Result<std::optional<v1::Frame>> Receive(std::chrono::milliseconds timeout);

  // Sends one batch and waits for its PublishResult. An Error frame for that batch id becomes an
  // error Status with the hub's code. Unrelated frames are stashed for Receive().
  Result<v1::PublishResult> Publish(std::span<const v1::Event> events,
                                    std::chrono::milliseconds timeout);

  // Waits for an Error frame; other frames are stashed. Empty after `timeout`.
  Result<std::optional<v1::Error>> WaitForError(std::chrono::milliseconds timeout);

  // Publishes `events` in batches of `batch_size`, keeping up to `max_inflight` batches
  // unanswered, and returns one result per event in input order. Fails if the whole run takes
  // longer than `timeout` or the hub answers a batch with an Error.
  Result<std::vector<v1::EventResult>> PublishAll(std::span<const v1::Event> events,
                                                  size_t batch_size, size_t max_inflight,
                                                  std::chrono::milliseconds timeout);

 private:
  RawPublisher();

  std::unique_ptr<zmq::context_t> context_;
  std::unique_ptr<zmq::socket_t> socket_;
  uint64_t next_batch_id_ = 1;
  std::deque<v1::Frame> stash_;
};

// Counts of each EventResult status in a list of results.
struct ResultCounts {
  size_t accepted = 0;
  size_t duplicate = 0;
  size_t rejected = 0;
  size_t conflict = 0;
  size_t retry = 0;
  size_t other = 0;
};
ResultCounts CountResults(std::span<const v1::EventResult> results);
ResultCounts CountResults(const v1::PublishResult& result);

// What a windowed stream learnt: the answer to each event whose batch was answered.
struct StreamReport {
  std::map<size_t, v1::EventResult> answers;  // event index -> result
  size_t sent_events = 0;
  size_t answered_batches = 0;
};

// Streams `events` in batches of `batch_size` with up to `window` batches unanswered, as a busy
// adapter does. Ends when every event is answered; or when `stop` is set (sending stops then) and
// no frame has come for `quiet` (the hub is gone or has answered all it will); or at `timeout`.
// `answered_batches` (optional) is bumped per answered batch, for another thread to watch.
// Errors only on a broken answer or an Error frame.
Result<StreamReport> StreamUntilStopped(
    RawPublisher& pub, std::span<const v1::Event> events, size_t batch_size, size_t window,
    const std::atomic<bool>& stop, std::atomic<size_t>* answered_batches,
    std::chrono::milliseconds timeout,
    std::chrono::milliseconds quiet = std::chrono::milliseconds(500));

// Publishes `total` events made on demand, `make(n)` returning the next n (so memory does not
// grow with `total`), with up to `window` batches unanswered; returns the counts of answers.
Result<ResultCounts> PublishGenerated(RawPublisher& pub, size_t total, size_t batch_size,
                                      size_t window,
                                      const std::function<std::vector<v1::Event>(size_t)>& make,
                                      std::chrono::milliseconds timeout);

}  // namespace carehub::itest
