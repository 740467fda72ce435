#pragma once
// The ingest endpoint (DESIGN §3): a ZeroMQ ROUTER that reads publisher frames, decodes them, runs
// them through the IngestPipeline, submits the prepared batches to the GroupCommitter and answers
// each Publish with a PublishResult only after its batch is committed.
//
// Untrusted input is handled, counted, logged and quarantined; it never ends the loop.
// Run() blocks on the calling thread until `stop` is set, then stops reading, lets in-flight
// batches commit, answers them and returns.

#include <google/protobuf/arena.h>

#include <atomic>
#include <future>
#include <memory>
#include <string>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "carehub/core/mutex.h"
#include "carehub/hub/frame_decode.h"
#include "carehub/hub/ingest_pipeline.h"
#include "carehub/metrics/registry.h"
#include "group_committer.h"
#include "key_use.h"

namespace carehub::hub {

struct IngestServerOptions {
  std::string endpoint;
  size_t max_frame_bytes = 8u << 20;
  size_t max_events_per_batch = 10'000;
  // CURVE server secret key (Z85); empty for plain mode.
  std::string curve_secret_key;
  // Batches submitted but not answered before the server stops reading (backpressure).
  size_t max_outstanding_batches = 64;
  // Replication (docs/replication.md). `accepting_writes` false: every Publish is answered RETRY
  // without being written (no standby in sync under `block`). `wait_replicated`: see
  // GroupCommitter::SetReplicationWait. Both empty without replication.
  std::function<bool()> accepting_writes;
  // Automatic failover (cluster/lease_gate.h): false once this hub may no longer act as the
  // primary. Checked before a batch is written and again just before it is answered: a closed
  // gate turns every answer into RETRY "no_leader_lease" (the publisher resends to the new
  // primary, which answers DUPLICATE for what it already has).
  std::function<bool()> may_acknowledge;
  std::function<Status(uint64_t)> wait_replicated;
  // CURVE: records each message's identity and key (key_use.h); not owned; may be null.
  KeyUseTracker* key_use = nullptr;
};

class IngestServer {
 public:
  // `pipeline`, `store` and `metrics` are not owned and must outlive the server; `last_seq` is the
  // highest hub_seq already durable in `store`.
  IngestServer(zmq::context_t& context, IngestServerOptions options, IngestPipeline* pipeline,
               Store* store, uint64_t last_seq, bool sync, metrics::Registry* metrics,
               std::function<void(uint64_t)> on_committed = nullptr);
  ~IngestServer();

  // Binds the socket; returns the bound endpoint (port 0 resolved) or an error.
  Result<std::string> Bind();
  void Run(const std::atomic<bool>& stop);

  GroupCommitter& committer() { return *committer_; }

  // Runs one event through the same path as a published one (authorise as `sender`, validate,
  // dedup, store) on the ingest thread; the future is fulfilled once the outcome is durable.
  // Thread-safe. Used by the admin API to replay quarantined input after a fix.
  std::future<v1::EventResult> SubmitReplay(std::string sender, v1::Event event);

 private:
  void HandleMessage(std::vector<zmq::message_t>& parts);
  void SendFrame(const std::string& routing_id, const v1::Frame& frame);
  void SendError(const std::string& routing_id, const std::string& code, const std::string& message,
                 uint64_t batch_id);
  void QuarantineFrame(const std::string& routing_id, const std::string& sender,
                       std::string_view raw, const std::string& reason, const std::string& message);
  void AnswerCompleted();
  // Every event of a kPublish decision answered RETRY with `reason`, unprocessed (nothing is
  // written), in frame order.
  void AnswerAllRetry(const std::string& routing_id, const IngestFrameDecision& publish,
                      const std::string& reason, const std::string& message);

  void TakeReplays();

  struct Replay {
    std::string sender;
    v1::Event event;
    std::shared_ptr<std::promise<v1::EventResult>> promise;
  };
  Mutex replay_mu_;
  std::vector<Replay> replays_ CAREHUB_GUARDED_BY(replay_mu_);

  // Plain Publish frames are read in place into this (frame_decode.h), reused from frame to frame.
  PublishInPlace in_place_;
  // Other frames are decoded on this arena; its first block is reused from frame to frame.
  std::vector<char> arena_block_ = std::vector<char>(8u << 20);
  google::protobuf::Arena arena_{arena_block_.data(), arena_block_.size()};

  IngestServerOptions options_;
  IngestPipeline* pipeline_;
  metrics::Registry* metrics_;
  zmq::socket_t socket_;
  int wake_fd_ = -1;
  std::unique_ptr<GroupCommitter> committer_;
  metrics::Histogram& ack_seconds_;
  metrics::Counter& batches_;
  metrics::Gauge& peers_;
};

}  // namespace carehub::hub
