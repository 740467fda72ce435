#pragma once
// An MLLP server (HL7 v2 Minimal Lower Layer Protocol: 0x0B <message> 0x1C 0x0D) feeding an
// EventSink through AdtProcessor.
//
// Threads: one acceptor thread plus one thread per connection (bounded by max_connections), each
// driven by poll(). A slow sink therefore only holds up the connection whose message it is
// persisting. Untrusted input never ends the process: bytes outside frames are discarded and
// counted, an oversized message gets an AR if its MSH can be read (else the connection is closed),
// idle connections are closed after idle_timeout.
//
// Thread-safe: Start, Stop, port and Stats may be called from any thread. Stop (also run by the
// destructor) closes every connection and joins every thread before returning.
//
// Logs to the spdlog logger "hl7"; nothing at info or above names a patient.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "carehub/adapters/event_sink.h"
#include "carehub/adapters/hl7/adt_processor.h"
#include "carehub/core/clock.h"
#include "carehub/core/mutex.h"
#include "carehub/core/status.h"

namespace carehub::adapters::hl7 {

struct MllpOptions {
  // "HOST:PORT" as carehub::ParseHostPort reads it; port 0 picks an ephemeral port (read it back
  // with port()). "[::1]:2575" for IPv6. The host is required ("0.0.0.0:2575" for every IPv4
  // interface): the adapter's --listen already required one.
  std::string listen = "127.0.0.1:2575";
  std::string publisher_ods;
  // Accepted MSH-4 values; empty means publisher_ods only.
  std::vector<std::string> allowed_facilities;
  size_t max_message_bytes = 1024 * 1024;
  std::chrono::milliseconds idle_timeout = std::chrono::minutes(5);
  size_t max_connections = 64;
  ValidationLimits limits;
  AckIdentity identity;
};

struct MllpStats {
  uint64_t connections_accepted = 0;
  uint64_t connections_refused = 0;  // over max_connections
  uint64_t connections_active = 0;
  uint64_t idle_timeouts = 0;
  uint64_t messages_received = 0;  // complete frames, including oversized ones
  uint64_t messages_accepted = 0;  // AA
  uint64_t messages_rejected = 0;  // AR, and oversized frames closed without an ACK
  std::map<std::string, uint64_t> rejected_by_reason;
  uint64_t errors = 0;                // AE: the sink did not persist
  uint64_t io_errors = 0;             // socket read/write failures
  uint64_t junk_bytes_discarded = 0;  // bytes outside frames, and abandoned partial frames
};

class MllpListener {
 public:
  // `sink` and `clock` must outlive the listener.
  MllpListener(MllpOptions options, EventSink& sink, const Clock& clock = SystemClock::Instance());
  ~MllpListener();
  MllpListener(const MllpListener&) = delete;
  MllpListener& operator=(const MllpListener&) = delete;

  // Binds, listens and starts the acceptor. Error codes: "invalid_listen_address", "bind_failed",
  // "already_started".
  Status Start() CAREHUB_EXCLUDES(lifecycle_mutex_);
  void Stop() CAREHUB_EXCLUDES(lifecycle_mutex_);

  // The bound port (useful with port 0); 0 before Start.
  uint16_t port() const { return port_; }
  MllpStats Stats() const;

 private:
  struct Connection {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };

  void AcceptLoop();
  void ServeConnection(int fd, std::string peer, std::shared_ptr<std::atomic<bool>> done);
  // Sends one framed ACK; false when the peer is gone or too slow.
  bool SendFramed(int fd, const std::string& ack);
  void Record(const ProcessResult& result);
  void ReapFinished();

  const MllpOptions options_;
  AdtProcessor processor_;
  int listen_fd_ = -1;
  int wake_read_fd_ = -1;
  int wake_write_fd_ = -1;
  uint16_t port_ = 0;
  std::thread acceptor_;
  std::list<Connection> connections_;  // acceptor thread only
  Mutex lifecycle_mutex_;              // Start/Stop
  bool started_ CAREHUB_GUARDED_BY(lifecycle_mutex_) = false;
  bool stopped_ CAREHUB_GUARDED_BY(lifecycle_mutex_) = false;

  mutable Mutex stats_mutex_;
  MllpStats stats_ CAREHUB_GUARDED_BY(stats_mutex_);
};

}  // namespace carehub::adapters::hl7
