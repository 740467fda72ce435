#include "ingest_server.h"

#include <poll.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>

#include "carehub/core/crash_points.h"
#include "carehub/core/log.h"
#include "carehub/core/strings.h"
#include "carehub/hub/frame_decode.h"
#include "carehub/hub/store/thread_setup.h"
#include "zap_handler.h"

namespace carehub::hub {
namespace {

// Untrusted-input problems are logged at warn, a few a second at most.
LogRateLimiter& Limiter() {
  static LogRateLimiter limiter;
  return limiter;
}

std::string PeerName(const std::string& routing_id) { return HexEncode(routing_id); }

// Every reason is created at start (at 0): see DroppedCounter in subscribe_server.cc.
constexpr const char* kAnswerDroppedReasons[] = {"peer_gone", "peer_not_reading", "send_failed"};
metrics::Counter& AnswersDroppedCounter(metrics::Registry& metrics, const std::string& reason) {
  return metrics.GetCounter("carehub_ingest_answers_dropped_total",
                            "Answers not sent because the publisher disconnected or does not read "
                            "them (it resends unanswered batches), by reason.",
                            {{"reason", reason}});
}

}  // namespace

IngestServer::IngestServer(zmq::context_t& context, IngestServerOptions options,
                           IngestPipeline* pipeline, Store* store, uint64_t last_seq, bool sync,
                           metrics::Registry* metrics, std::function<void(uint64_t)> on_committed)
    : options_(std::move(options)),
      pipeline_(pipeline),
      metrics_(metrics),
      socket_(context, zmq::socket_type::router),
      wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      ack_seconds_(metrics->GetHistogram("carehub_ingest_batch_seconds",
                                         "Time from receiving a Publish to answering it.",
                                         metrics::LatencyBuckets())),
      batches_(metrics->GetCounter("carehub_ingest_batches_total", "Publish batches answered.")),
      peers_(metrics->GetGauge("carehub_connected_peers", "Connected ZeroMQ peers.",
                               {{"endpoint", "ingest"}})) {
  for (const char* reason : kAnswerDroppedReasons) {
    (void)AnswersDroppedCounter(*metrics_, reason);
  }
  int fd = wake_fd_;
  committer_ = std::make_unique<GroupCommitter>(
      store, last_seq, sync, metrics,
      [fd] {
        uint64_t one = 1;
        (void)!write(fd, &one, sizeof(one));
      },
      std::move(on_committed));
  if (options_.wait_replicated) {
    committer_->SetReplicationWait(options_.wait_replicated);
  }
}

IngestServer::~IngestServer() {
  committer_->Stop();
  if (wake_fd_ >= 0) {
    close(wake_fd_);
  }
}

Result<std::string> IngestServer::Bind() {
  try {
    // Frames above the limit are answered with an error; far above it (a hostile sender) the
    // connection is dropped by ZeroMQ before the bytes are buffered.
    socket_.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(options_.max_frame_bytes * 4));
    // Frames queued per publisher before ZeroMQ stops reading its connection (TCP pushes back):
    // 4x a client's window, so a sender that outpaces the hub buffers at most this many frames.
    socket_.set(zmq::sockopt::rcvhwm, 32);
    // Answers queued per publisher: well above a client's window of unanswered batches (8), and
    // low enough that a publisher that never reads costs at most this many answers of memory.
    // Beyond it an answer is dropped and counted (router_mandatory reports it instead of dropping
    // silently); the publisher resends the batch and gets DUPLICATE with the same hub_seq.
    socket_.set(zmq::sockopt::sndhwm, 64);
    socket_.set(zmq::sockopt::router_mandatory, 1);
    socket_.set(zmq::sockopt::linger, 2000);
    MakeCurveServer(socket_, options_.curve_secret_key, kIngestZapDomain);
    socket_.bind(options_.endpoint);
    return socket_.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return Status::Error("bind_failed",
                         "cannot bind ingest endpoint " + options_.endpoint + ": " + e.what());
  }
}

void IngestServer::SendFrame(const std::string& routing_id, const v1::Frame& frame) {
  std::string bytes = frame.SerializeAsString();
  const char* dropped = nullptr;
  try {
    // Only the routing part can be refused (the peer's queue is full); the rest then follows.
    if (!socket_.send(zmq::buffer(routing_id),
                      zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      dropped = "peer_not_reading";
    } else {
      (void)socket_.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
    }
  } catch (const zmq::error_t& e) {
    dropped = e.num() == EHOSTUNREACH ? "peer_gone" : "send_failed";
  }
  if (dropped) {
    AnswersDroppedCounter(*metrics_, dropped).Inc();
    if (Limiter().Allow()) {
      Logger("ingest")->warn("answer to peer {} dropped: {}", PeerName(routing_id), dropped);
    }
  }
}

void IngestServer::SendError(const std::string& routing_id, const std::string& code,
                             const std::string& message, uint64_t batch_id) {
  v1::Frame frame;
  frame.set_version(v1::PROTOCOL_VERSION_1);
  auto* error = frame.mutable_error();
  error->set_code(code);
  error->set_message(message);
  error->set_batch_id(batch_id);
  SendFrame(routing_id, frame);
}

void IngestServer::QuarantineFrame(const std::string& routing_id, const std::string& sender,
                                   std::string_view raw, const std::string& reason,
                                   const std::string& message) {
  if (Limiter().Allow()) {
    Logger("ingest")->warn("frame from peer {} ({} bytes) refused: {}: {}", PeerName(routing_id),
                           raw.size(), reason, message);
  }
  SendError(routing_id, reason, message, 0);
  committer_->Submit(pipeline_->QuarantineFrame(routing_id, sender, raw, reason, message));
}

void IngestServer::HandleMessage(std::vector<zmq::message_t>& parts) {
  if (parts.size() < 2) {
    return;
  }
  std::string routing_id = parts.front().to_string();
  zmq::message_t& payload = parts.back();
  std::string sender;
  if (!options_.curve_secret_key.empty()) {
    const char* user = payload.gets("User-Id");
    sender = user ? user : "";
    if (options_.key_use != nullptr) {
      const char* key = payload.gets(kKeyProperty);
      options_.key_use->NoteMessage(sender, key ? key : "");
    }
  }
  // One frame per message (docs/protocol.md). REQ framing (an empty delimiter first) or several
  // parts are refused, not half-read: the answer could not reach a REQ socket anyway.
  if (parts.size() != 2) {
    QuarantineFrame(routing_id, sender, payload.to_string_view(), "malformed_frame",
                    "a message must be exactly one frame (a DEALER sends just the payload); got " +
                        std::to_string(parts.size() - 1) + " parts, e.g. REQ framing");
    return;
  }
  // A plain Publish is read in place (views of the payload in in_place_); any other frame is
  // decoded by protobuf on an arena: a 1000-event batch is tens of thousands of small allocations
  // otherwise. Prepare() copies what it keeps of either (and of the payload), so the arena is
  // reset as soon as this frame is handled.
  struct ArenaReset {
    google::protobuf::Arena& arena;
    ~ArenaReset() { arena.Reset(); }
  } reset{arena_};
  IngestFrameDecision decision =
      DecodeIngestFrame(payload.to_string_view(), options_.max_frame_bytes,
                        options_.max_events_per_batch, &arena_, &in_place_);
  switch (decision.action) {
    case IngestFrameDecision::Action::kPublish:
      CAREHUB_CRASH_POINT("ingest.after_decode");
      if (options_.may_acknowledge && !options_.may_acknowledge()) {
        AnswerAllRetry(routing_id, decision, "no_leader_lease",
                       "this hub does not hold the cluster's leader lease: it is not the primary "
                       "now; send to the other hub");
        return;
      }
      if (options_.accepting_writes && !options_.accepting_writes()) {
        AnswerAllRetry(routing_id, decision, "standby_unavailable",
                       "no standby is in sync and replication.on_standby_loss is block: nothing "
                       "is acknowledged on one disk only");
        return;
      }
      committer_->Submit(decision.in_place != nullptr
                             ? pipeline_->Prepare(routing_id, sender, decision.in_place->batch_id,
                                                  decision.in_place->event_views(),
                                                  decision.in_place->event_bytes())
                             : pipeline_->Prepare(routing_id, sender, decision.publish,
                                                  /*quarantine_rejects=*/true,
                                                  decision.event_bytes));
      return;
    case IngestFrameDecision::Action::kRefuseBatch:
      if (Limiter().Allow()) {
        Logger("ingest")->warn("batch from peer {} refused: {}", PeerName(routing_id),
                               decision.message);
      }
      metrics_
          ->GetCounter("carehub_frames_rejected_total",
                       "Frames that could not be processed, by reason.",
                       {{"reason", decision.reason}})
          .Inc();
      SendError(routing_id, decision.reason, decision.message, decision.batch_id);
      return;
    case IngestFrameDecision::Action::kHeartbeat: {
      v1::Frame reply;
      reply.set_version(v1::PROTOCOL_VERSION_1);
      reply.mutable_heartbeat()->set_sent_at_unix_ms(
          ToUnixMillis(std::chrono::system_clock::now()));
      reply.mutable_heartbeat()->set_head_seq(committer_->committed_seq());
      SendFrame(routing_id, reply);
      return;
    }
    case IngestFrameDecision::Action::kQuarantine:
      QuarantineFrame(routing_id, sender, payload.to_string_view(), decision.reason,
                      decision.message);
      return;
  }
}

std::future<v1::EventResult> IngestServer::SubmitReplay(std::string sender, v1::Event event) {
  auto promise = std::make_shared<std::promise<v1::EventResult>>();
  auto future = promise->get_future();
  {
    MutexLock lock(replay_mu_);
    replays_.push_back(Replay{std::move(sender), std::move(event), std::move(promise)});
  }
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  return future;
}

void IngestServer::TakeReplays() {
  std::vector<Replay> replays;
  {
    MutexLock lock(replay_mu_);
    replays.swap(replays_);
  }
  for (auto& r : replays) {
    v1::Publish publish;
    *publish.add_events() = std::move(r.event);
    auto batch = pipeline_->Prepare("", r.sender, &publish, /*quarantine_rejects=*/false);
    auto promise = r.promise;
    batch->on_answer = [promise](const v1::PublishResult& result) {
      v1::EventResult outcome;
      if (result.results_size() > 0) {
        outcome = result.results(0);
      }
      promise->set_value(outcome);
    };
    committer_->Submit(std::move(batch));
  }
}

void IngestServer::AnswerAllRetry(const std::string& routing_id, const IngestFrameDecision& publish,
                                  const std::string& reason, const std::string& message) {
  // The frame's event ids, in order, from whichever reading it had.
  std::vector<std::string_view> event_ids;
  uint64_t batch_id = 0;
  if (publish.in_place != nullptr) {
    batch_id = publish.in_place->batch_id;
    for (const EventView& event : publish.in_place->event_views()) {
      event_ids.push_back(event.envelope().event_id());
    }
  } else {
    batch_id = publish.publish->batch_id();
    for (const v1::Event& event : publish.publish->events()) {
      event_ids.push_back(event.envelope().event_id());
    }
  }
  v1::Frame frame;
  frame.set_version(v1::PROTOCOL_VERSION_1);
  auto* result = frame.mutable_publish_result();
  result->set_batch_id(batch_id);
  for (const std::string_view event_id : event_ids) {
    auto* r = result->add_results();
    r->set_status(v1::EventResult::RETRY);
    r->set_event_id(std::string(event_id));
    r->set_reason(reason);
    r->set_message(message);
  }
  metrics_
      ->GetCounter("carehub_ingest_retry_answers_total",
                   "Events answered RETRY without being processed, by reason.",
                   {{"reason", reason}})
      .Inc(event_ids.size());
  SendFrame(routing_id, frame);
}

void IngestServer::AnswerCompleted() {
  uint64_t drained = 0;
  (void)!read(wake_fd_, &drained, sizeof(drained));
  auto now = std::chrono::system_clock::now();
  for (auto& batch : committer_->TakeCompleted()) {
    pipeline_->Finish(batch.get());
    if (!batch->answer_after_commit) {
      continue;
    }
    if (options_.may_acknowledge && !options_.may_acknowledge()) {
      // The lease ran out while the batch was in flight (or the process was paused past it):
      // another hub may be the primary now, so nothing is acknowledged from here.
      for (auto& r : *batch->result.mutable_results()) {
        r.set_status(v1::EventResult::RETRY);
        r.set_reason("no_leader_lease");
        r.set_message("this hub lost the cluster's leader lease before answering; resend");
      }
    } else if (batch->unreplicated) {
      // Stored here, not on the standby: not acknowledged. The resend is answered DUPLICATE once
      // the standby has caught up (until then the gate above answers RETRY).
      for (auto& r : *batch->result.mutable_results()) {
        r.set_status(v1::EventResult::RETRY);
        r.set_reason("standby_unavailable");
        r.set_message("stored on the primary only; the standby did not acknowledge it in time");
      }
    }
    if (batch->on_answer) {
      batch->on_answer(batch->result);
      continue;
    }
    int refused = 0;
    for (const auto& r : batch->result.results()) {
      refused += r.status() == v1::EventResult::REJECTED || r.status() == v1::EventResult::CONFLICT;
    }
    if (refused > 0 && Limiter().Allow()) {
      Logger("ingest")->warn("batch {} from peer {}: {} of {} events refused (see quarantine)",
                             batch->result.batch_id(), PeerName(batch->routing_id), refused,
                             batch->result.results_size());
    }
    v1::Frame frame;
    frame.set_version(v1::PROTOCOL_VERSION_1);
    frame.set_allocated_publish_result(&batch->result);
    SendFrame(batch->routing_id, frame);
    (void)frame.release_publish_result();
    ack_seconds_.Observe(std::chrono::duration<double>(now - batch->received_at).count());
    batches_.Inc();
    pipeline_->Recycle(std::move(batch));
  }
}

void IngestServer::Run(const std::atomic<bool>& stop) {
  pthread_setname_np(pthread_self(), "carehub-ingest");
  PrepareStoreThread();
  auto log = Logger("ingest");
  std::vector<zmq::message_t> parts;
  bool stopping = false;
  while (true) {
    if (stop.load() && !stopping) {
      stopping = true;
      log->info("stopping: finishing {} in-flight batches", committer_->outstanding());
    }
    if (stopping && committer_->outstanding() == 0) {
      break;
    }
    bool accept_input = !stopping && committer_->outstanding() < options_.max_outstanding_batches;
    zmq::pollitem_t items[] = {
        {socket_.handle(), 0, static_cast<short>(accept_input ? ZMQ_POLLIN : 0), 0},
        {nullptr, wake_fd_, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 2, std::chrono::milliseconds(100));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) {
        continue;
      }
      throw;
    }
    if (items[1].revents & ZMQ_POLLIN) {
      AnswerCompleted();
      if (!stopping) {
        TakeReplays();
      }
    }
    if (items[0].revents & ZMQ_POLLIN) {
      // Take what is waiting (bounded), so many batches join the next group commit.
      for (int n = 0; n < 256 && committer_->outstanding() < options_.max_outstanding_batches;
           ++n) {
        parts.clear();
        auto got =
            zmq::recv_multipart(socket_, std::back_inserter(parts), zmq::recv_flags::dontwait);
        if (!got) {
          break;
        }
        HandleMessage(parts);
      }
    }
  }
  AnswerCompleted();
  committer_->Stop();
}

}  // namespace carehub::hub
