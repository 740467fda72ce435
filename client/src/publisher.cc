#include "carehub/client/publisher.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <nlohmann/json.hpp>
#include <thread>
#include <unordered_map>
#include <zmq.hpp>

#include "carehub/client/connection_watch.h"
#include "carehub/client/endpoints.h"
#include "carehub/core/log.h"
#include "carehub/core/mutex.h"
#include "carehub/core/ordered_key.h"
#include "carehub/v1/wire.pb.h"

namespace carehub::client {
namespace {

using Clock = std::chrono::steady_clock;

std::string EncodeSeq(uint64_t seq) { return EncodeOrderedU64(seq); }

uint64_t DecodeSeq(std::string_view b) { return DecodeOrderedU64(b); }

int64_t NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr char kLogger[] = "publisher";
// How long a connection whose handshake the hub refused waits before it is made again.
constexpr auto kRetryRefusedAfter = std::chrono::seconds(5);

// Outbox value: 8-byte enqueue time (ms) + serialized event.
class PublisherImpl final : public Publisher {
 public:
  explicit PublisherImpl(PublisherOptions options) : options_(std::move(options)) {}
  ~PublisherImpl() override { Close(); }

  Status Init() {
    std::error_code ec;
    std::filesystem::create_directories(options_.outbox_dir, ec);
    rocksdb::DBOptions db_options;
    db_options.create_if_missing = true;
    db_options.create_missing_column_families = true;
    db_options.max_background_jobs = 1;
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
        {"default", {}}, {"outbox", {}}, {"errors", {}}};
    rocksdb::DB* raw = nullptr;
    auto s = rocksdb::DB::Open(db_options, options_.outbox_dir.string(), cfs, &handles_, &raw);
    if (!s.ok()) {
      return Status::Error("outbox_error", "cannot open outbox at " + options_.outbox_dir.string() +
                                               ": " + s.ToString());
    }
    db_.reset(raw);
    {
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}, handles_[1]));
      it->SeekToFirst();
      if (it->Valid()) {
        next_to_send_ = DecodeSeq(it->key().ToStringView());
      }
      uint64_t count = 0;
      uint64_t last = 0;
      for (; it->Valid(); it->Next()) {
        ++count;
        last = DecodeSeq(it->key().ToStringView());
      }
      depth_ = count;
      next_seq_ = std::max<uint64_t>(last + 1, 1);
      if (count == 0) {
        next_to_send_ = next_seq_;
      }
    }
    {
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}, handles_[2]));
      uint64_t last = 0;
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        ++errors_stored_;
        last = DecodeSeq(it->key().ToStringView());
      }
      next_error_id_ = last + 1;
    }
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    thread_ = std::thread([this] { Run(); });
    if (depth_ > 0) {
      Logger(kLogger)->info("outbox at {} holds {} unanswered events; resending",
                            options_.outbox_dir.string(), depth_.load());
    }
    return Status::Ok();
  }

  Status Enqueue(const std::vector<v1::Event>& events) override CAREHUB_EXCLUDES(enqueue_mu_) {
    if (events.empty()) {
      return Status::Ok();
    }
    rocksdb::WriteBatch batch;
    std::string prefix = EncodeSeq(static_cast<uint64_t>(NowMillis()));
    {
      // Seqs are assigned and written under one lock so the outbox is in seq order on disk.
      MutexLock lock(enqueue_mu_);
      uint64_t seq = next_seq_;
      for (const auto& e : events) {
        std::string value = prefix;
        e.AppendToString(&value);
        batch.Put(handles_[1], EncodeSeq(seq++), value);
      }
      rocksdb::WriteOptions wo;
      wo.sync = options_.sync_outbox;
      auto s = db_->Write(wo, &batch);
      if (!s.ok()) {
        return Status::Error("outbox_error", "cannot write to the outbox: " + s.ToString());
      }
      next_seq_ = seq;
    }
    depth_ += events.size();
    enqueued_ += events.size();
    Wake();
    return Status::Ok();
  }

  bool Drain(std::chrono::milliseconds timeout) override {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (depth_.load() == 0) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return depth_.load() == 0;
  }

  PublisherStats Stats() const override {
    PublisherStats s;
    s.outbox_depth = depth_.load();
    s.enqueued = enqueued_.load();
    s.accepted = accepted_.load();
    s.duplicate = duplicate_.load();
    s.rejected = rejected_.load();
    s.conflict = conflict_.load();
    s.retried = retried_.load();
    s.errors_stored = errors_stored_.load();
    s.connected = connected_.load();
    {
      MutexLock lock(stats_mu_);
      s.rejected_by_reason = rejected_by_reason_;
      s.hub_problem = hub_problem_;
    }
    if (s.outbox_depth > 0) {
      rocksdb::ReadOptions ro;
      std::string lower = EncodeSeq(lowest_live_hint_.load());
      rocksdb::Slice lower_slice(lower);
      ro.iterate_lower_bound = &lower_slice;
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, handles_[1]));
      it->Seek(lower);
      if (it->Valid()) {
        auto enq_ms = static_cast<int64_t>(DecodeSeq(it->value().ToStringView()));
        s.oldest_unsent_age_seconds = std::max<double>(0, (NowMillis() - enq_ms) / 1000.0);
      }
    }
    return s;
  }

  std::vector<FailedEvent> Failures(size_t max) const override {
    std::vector<FailedEvent> out;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}, handles_[2]));
    for (it->SeekToFirst(); it->Valid() && out.size() < max; it->Next()) {
      auto j = nlohmann::json::parse(it->value().ToStringView(), nullptr, false);
      if (j.is_discarded()) {
        continue;
      }
      out.push_back(FailedEvent{j.value("event_id", ""), j.value("publisher_ods", ""),
                                j.value("status", ""), j.value("reason", ""),
                                j.value("message", "")});
    }
    return out;
  }

  void Close() override {
    if (closed_.exchange(true)) {
      return;
    }
    stop_.store(true);
    Wake();
    if (thread_.joinable()) {
      thread_.join();
    }
    if (db_) {
      for (auto* h : handles_) {
        db_->DestroyColumnFamilyHandle(h);
      }
      handles_.clear();
      db_->Close();
      db_.reset();
    }
    if (wake_fd_ >= 0) {
      close(wake_fd_);
      wake_fd_ = -1;
    }
  }

 private:
  struct Inflight {
    std::vector<uint64_t> seqs;
    Clock::time_point sent_at;
  };

  void Wake() {
    uint64_t one = 1;
    if (wake_fd_ >= 0) {
      (void)!write(wake_fd_, &one, sizeof(one));
    }
  }

  // Reads up to `max` outbox events with seq >= from; returns the events and their seqs.
  void ReadOutbox(uint64_t from, size_t max, std::vector<uint64_t>* seqs, v1::Publish* publish) {
    rocksdb::ReadOptions ro;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, handles_[1]));
    for (it->Seek(EncodeSeq(from)); it->Valid() && seqs->size() < max; it->Next()) {
      auto value = it->value().ToStringView();
      if (value.size() < 8 || !publish->add_events()->ParseFromArray(
                                  value.data() + 8, static_cast<int>(value.size() - 8))) {
        // A corrupt outbox record cannot be sent; drop it rather than block the queue.
        publish->mutable_events()->RemoveLast();
        continue;
      }
      seqs->push_back(DecodeSeq(it->key().ToStringView()));
    }
  }

  void ReadSeqs(const std::vector<uint64_t>& wanted, std::vector<uint64_t>* seqs,
                v1::Publish* publish) {
    for (uint64_t seq : wanted) {
      std::string value;
      if (!db_->Get({}, handles_[1], EncodeSeq(seq), &value).ok() || value.size() < 8) {
        continue;  // already answered
      }
      if (publish->add_events()->ParseFromArray(value.data() + 8,
                                                static_cast<int>(value.size() - 8))) {
        seqs->push_back(seq);
      } else {
        publish->mutable_events()->RemoveLast();
      }
    }
  }

  // `frame` holds the Publish whose events are `seqs`; the batch id is assigned here.
  bool SendBatch(zmq::socket_t& socket, std::vector<uint64_t> seqs, v1::Frame* frame) {
    if (seqs.empty()) {
      return true;
    }
    uint64_t batch_id = next_batch_id_++;
    frame->set_version(v1::PROTOCOL_VERSION_1);
    frame->mutable_publish()->set_batch_id(batch_id);
    std::string bytes = frame->SerializeAsString();
    try {
      auto sent = socket.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
      if (!sent) {
        return false;
      }
    } catch (const zmq::error_t&) {
      return false;
    }
    inflight_[batch_id] = Inflight{std::move(seqs), Clock::now()};
    return true;
  }

  // True when the hub said it is no longer the primary (it lost the cluster's leader lease).
  bool HandleResult(const v1::PublishResult& result) {
    auto it = inflight_.find(result.batch_id());
    if (it == inflight_.end()) {
      return false;  // an answer to a batch we already resent; the resend's answer settles it
    }
    bool lost_lease = false;
    Inflight inflight = std::move(it->second);
    inflight_.erase(it);
    rocksdb::WriteBatch batch;
    std::vector<uint64_t> retry;
    uint64_t removed = 0;
    std::map<std::string, uint64_t> refused;  // this batch's REJECTED/CONFLICT, by reason
    std::string first_refused_id;
    for (int i = 0; i < result.results_size() && i < static_cast<int>(inflight.seqs.size()); ++i) {
      const auto& r = result.results(i);
      uint64_t seq = inflight.seqs[i];
      switch (r.status()) {
        case v1::EventResult::ACCEPTED:
          ++accepted_;
          batch.Delete(handles_[1], EncodeSeq(seq));
          ++removed;
          break;
        case v1::EventResult::DUPLICATE:
          ++duplicate_;
          batch.Delete(handles_[1], EncodeSeq(seq));
          ++removed;
          break;
        case v1::EventResult::REJECTED:
        case v1::EventResult::CONFLICT: {
          bool conflict = r.status() == v1::EventResult::CONFLICT;
          conflict ? ++conflict_ : ++rejected_;
          {
            MutexLock lock(stats_mu_);
            ++rejected_by_reason_[r.reason()];
          }
          nlohmann::json j = {{"event_id", r.event_id()},
                              {"status", conflict ? "CONFLICT" : "REJECTED"},
                              {"reason", r.reason()},
                              {"message", r.message()}};
          std::string value;
          if (db_->Get({}, handles_[1], EncodeSeq(seq), &value).ok() && value.size() >= 8) {
            v1::Event e;
            if (e.ParseFromArray(value.data() + 8, static_cast<int>(value.size() - 8))) {
              j["publisher_ods"] = e.envelope().publisher_ods();
            }
          }
          batch.Put(handles_[2], EncodeSeq(next_error_id_++), j.dump());
          batch.Delete(handles_[1], EncodeSeq(seq));
          ++errors_stored_;
          ++removed;
          // Per-event detail (the hub's message) at debug: it may quote field values. The batch's
          // reasons are logged at warn below.
          Logger(kLogger)->debug("hub refused event {}: {}: {}", r.event_id(), r.reason(),
                                 r.message());
          ++refused[std::string(conflict ? "CONFLICT " : "REJECTED ") + r.reason()];
          if (first_refused_id.empty()) {
            first_refused_id = r.event_id();
          }
          break;
        }
        default:
          lost_lease = lost_lease || r.reason() == "no_leader_lease";
          retry.push_back(seq);
          break;
      }
    }
    // Events beyond the answered ones (a malformed answer) are retried too.
    for (size_t i = result.results_size(); i < inflight.seqs.size(); ++i) {
      retry.push_back(inflight.seqs[i]);
    }
    if (batch.Count() > 0) {
      // Not synced: if this is lost in a crash the events are resent and answered DUPLICATE.
      auto s = db_->Write({}, &batch);
      if (!s.ok()) {
        Logger(kLogger)->error("cannot update the outbox: {}", s.ToString());
      }
    }
    depth_ -= removed;
    if (!refused.empty() && refused_log_limit_.Allow()) {
      // Visible where it happens: the source was answered AA/201 when the event reached the
      // outbox, so this line (and the error store) is where an operator learns the hub said no.
      std::string reasons;
      for (const auto& [reason, n] : refused) {
        reasons += (reasons.empty() ? "" : ", ") + reason + " x" + std::to_string(n);
      }
      Logger(kLogger)->warn(
          "hub refused events of batch {}: {} (first event id {}); they are in the outbox's "
          "error store, not resent",
          result.batch_id(), reasons, first_refused_id);
    }
    if (!retry.empty()) {
      retried_ += retry.size();
      retry_.push_back({std::move(retry), Clock::now() + std::chrono::milliseconds(500)});
    }
    return lost_lease;
  }

  void UpdateLowestLive() {
    uint64_t lowest = next_to_send_;
    for (const auto& [id, f] : inflight_) {
      if (!f.seqs.empty()) {
        lowest = std::min(lowest, f.seqs.front());
      }
    }
    for (const auto& r : retry_) {
      if (!r.seqs.empty()) {
        lowest = std::min(lowest, r.seqs.front());
      }
    }
    lowest_live_hint_.store(lowest);
  }

  // `watch` is replaced by one watching the new socket, set up before it connects.
  zmq::socket_t Connect(zmq::context_t& context, const std::string& endpoint,
                        std::unique_ptr<ConnectionWatch>* watch) {
    zmq::socket_t socket(context, zmq::socket_type::dealer);
    socket.set(zmq::sockopt::linger, 0);
    // Do not queue frames for a hub that is not connected: they would be lost with the pipe.
    socket.set(zmq::sockopt::immediate, 1);
    socket.set(zmq::sockopt::reconnect_ivl, 100);
    socket.set(zmq::sockopt::reconnect_ivl_max, 2000);
    if (options_.curve) {
      socket.set(zmq::sockopt::curve_serverkey, options_.curve->server_public);
      socket.set(zmq::sockopt::curve_publickey, options_.curve->client_public);
      socket.set(zmq::sockopt::curve_secretkey, options_.curve->client_secret);
    }
    *watch = std::make_unique<ConnectionWatch>(context, socket, endpoint);
    socket.connect(endpoint);
    return socket;
  }

  // Logs (once per distinct cause) and keeps, for Stats().hub_problem, why the hub is not
  // answering; an empty `problem` means it answers again.
  void SetHubProblem(const std::string& problem) {
    {
      MutexLock lock(stats_mu_);
      if (hub_problem_ == problem) {
        return;
      }
      hub_problem_ = problem;
    }
    if (!problem.empty()) {
      Logger(kLogger)->warn("{}; events stay in the outbox and are resent when the hub answers",
                            problem);
    }
  }

  void Run() {
    zmq::context_t context(1);
    // Several endpoints (a primary and its standby, docs/replication.md): one at a time; a
    // standby's "not_primary" names the primary, and a hub that stops answering makes us try the
    // next. Unanswered batches are resent to the new one (answered DUPLICATE where stored).
    const std::vector<std::string> endpoints = SplitEndpoints(options_.endpoint);
    size_t current = 0;
    std::unique_ptr<ConnectionWatch> watch;
    zmq::socket_t socket = Connect(context, endpoints[current], &watch);
    bool problem_shown = false;  // a hub problem is logged and in Stats until the hub answers
    auto last_heard = Clock::now() - std::chrono::hours(1);
    auto last_heartbeat = Clock::now() - std::chrono::hours(1);
    auto connected_at = Clock::now();
    bool was_connected = false;
    bool contact_lost = false;
    auto move_to = [&](size_t next, const std::string& why) {
      if (next != current) {
        Logger(kLogger)->warn("moving from hub {} to {}: {}", endpoints[current], endpoints[next],
                              why);
      }
      current = next;
      watch.reset();  // before its socket closes (connection_watch.h)
      socket = Connect(context, endpoints[current], &watch);
      connected_at = Clock::now();
      last_heartbeat = Clock::now() - std::chrono::hours(1);
      for (auto& [id, f] : inflight_) {
        retry_.push_back({std::move(f.seqs), Clock::now()});
      }
      inflight_.clear();
    };

    while (!stop_.load()) {
      auto now = Clock::now();
      if (endpoints.size() > 1 && now - last_heard > options_.heartbeat_interval * 3 &&
          now - connected_at > options_.heartbeat_interval * 3) {
        move_to((current + 1) % endpoints.size(), "no answer");
        now = Clock::now();
      }
      // Heartbeats tell us when the hub is back, so unanswered batches go out again at once.
      if (now - last_heartbeat > options_.heartbeat_interval) {
        v1::Frame hb;
        hb.set_version(v1::PROTOCOL_VERSION_1);
        hb.mutable_heartbeat()->set_sent_at_unix_ms(NowMillis());
        std::string bytes = hb.SerializeAsString();
        try {
          (void)socket.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
        } catch (const zmq::error_t&) {
        }
        last_heartbeat = now;
      }
      bool connected = now - last_heard < options_.heartbeat_interval * 3;
      connected_.store(connected);
      if (!connected && was_connected) {
        contact_lost = true;
      }
      // Silent since start or since contact was lost: say why, as the socket saw it (a refused
      // key used to leave the adapter answering AA with nothing in its log).
      watch->Poll();
      const LinkState link = watch->state();
      const bool refused = link == LinkState::kKeyRefused ||
                           link == LinkState::kMechanismMismatch ||
                           link == LinkState::kHandshakeFailed;
      if (!connected && (refused || now - connected_at > options_.heartbeat_interval * 3)) {
        SetHubProblem("hub at " + endpoints[current] +
                      " is not answering: " + watch->Explain(options_.curve.has_value()));
        problem_shown = true;
      }
      // libzmq ends a connection whose handshake failed for good: it does not reconnect after a
      // ZAP refusal. Found by AdapterHubProblemsTest: an adapter whose key was added to the hub's
      // identities afterwards never got in until it was restarted. So a refused connection is
      // made again after a pause, quietly (the cause is already logged once).
      if (refused && now - connected_at > kRetryRefusedAfter) {
        move_to(current, "");
        now = Clock::now();
      }
      was_connected = connected;

      // Resend batches that timed out.
      for (auto it = inflight_.begin(); it != inflight_.end();) {
        if (now - it->second.sent_at > options_.resend_after) {
          retried_ += it->second.seqs.size();
          retry_.push_back({std::move(it->second.seqs), now});
          it = inflight_.erase(it);
        } else {
          ++it;
        }
      }
      // Send: retries first (in order), then new outbox events, within the in-flight window.
      while (inflight_.size() < options_.max_inflight_batches && !retry_.empty() &&
             retry_.front().not_before <= now) {
        std::vector<uint64_t> seqs;
        v1::Frame frame;
        ReadSeqs(retry_.front().seqs, &seqs, frame.mutable_publish());
        bool sent = SendBatch(socket, seqs, &frame);
        if (!sent) {
          retry_.front().not_before = now + std::chrono::milliseconds(200);
          break;
        }
        retry_.pop_front();
      }
      while (inflight_.size() < options_.max_inflight_batches && next_to_send_ < next_seq_) {
        std::vector<uint64_t> seqs;
        v1::Frame frame;
        ReadOutbox(next_to_send_, options_.max_batch_events, &seqs, frame.mutable_publish());
        if (seqs.empty()) {
          next_to_send_ = next_seq_;
          break;
        }
        uint64_t after = seqs.back() + 1;
        bool sent = SendBatch(socket, seqs, &frame);
        if (!sent) {
          break;
        }
        next_to_send_ = after;
      }
      UpdateLowestLive();

      zmq::pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0},
                                 {nullptr, wake_fd_, ZMQ_POLLIN, 0}};
      try {
        zmq::poll(items, 2, std::chrono::milliseconds(50));
      } catch (const zmq::error_t&) {
        continue;
      }
      if (items[1].revents & ZMQ_POLLIN) {
        uint64_t v;
        (void)!read(wake_fd_, &v, sizeof(v));
      }
      if (items[0].revents & ZMQ_POLLIN) {
        for (int n = 0; n < 1000; ++n) {
          zmq::message_t msg;
          auto got = socket.recv(msg, zmq::recv_flags::dontwait);
          if (!got) {
            break;
          }
          last_heard = Clock::now();
          if (problem_shown) {
            problem_shown = false;
            SetHubProblem("");
          }
          v1::Frame frame;
          if (!frame.ParseFromArray(msg.data(), static_cast<int>(msg.size()))) {
            continue;
          }
          if (frame.has_publish_result()) {
            if (HandleResult(frame.publish_result()) && endpoints.size() > 1) {
              move_to((current + 1) % endpoints.size(), "it lost the cluster's leader lease");
              break;  // the old socket is gone
            }
          } else if (frame.has_error() && frame.error().code() == "not_primary" &&
                     endpoints.size() > 1) {
            const auto& named = frame.error().primary_endpoint();
            auto it = std::find(endpoints.begin(), endpoints.end(), named);
            move_to(it != endpoints.end() ? static_cast<size_t>(it - endpoints.begin())
                                          : (current + 1) % endpoints.size(),
                    "it is a standby" + (named.empty() ? std::string() : "; primary " + named));
            break;  // the old socket is gone
          } else if (frame.has_error()) {
            Logger(kLogger)->warn("hub error {}: {}", frame.error().code(),
                                  frame.error().message());
            auto it = inflight_.find(frame.error().batch_id());
            if (frame.error().batch_id() != 0 && it != inflight_.end()) {
              retry_.push_back(
                  {std::move(it->second.seqs), Clock::now() + std::chrono::seconds(5)});
              inflight_.erase(it);
            }
          }
          if (contact_lost) {
            // The hub came back: whatever was in flight before may be lost with the old pipe.
            contact_lost = false;
            Logger(kLogger)->info("hub at {} answers again; resending unanswered batches",
                                  endpoints[current]);
            for (auto& [id, f] : inflight_) {
              retry_.push_back({std::move(f.seqs), Clock::now()});
            }
            inflight_.clear();
          }
        }
      }
    }
  }

  struct Retry {
    std::vector<uint64_t> seqs;
    Clock::time_point not_before;
  };

  PublisherOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  Mutex enqueue_mu_;  // orders seq assignment with the outbox write (Enqueue)
  // Set at open before the sender thread starts, then written only by Enqueue with enqueue_mu_
  // held, after the outbox write; the sender thread reads it lock-free (it is atomic), so it is
  // not CAREHUB_GUARDED_BY.
  std::atomic<uint64_t> next_seq_{1};
  // Sender-thread state.
  uint64_t next_to_send_ = 1;
  uint64_t next_batch_id_ = 1;
  uint64_t next_error_id_ = 1;
  std::unordered_map<uint64_t, Inflight> inflight_;
  std::deque<Retry> retry_;

  std::atomic<uint64_t> depth_{0};
  std::atomic<uint64_t> enqueued_{0};
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> duplicate_{0};
  std::atomic<uint64_t> rejected_{0};
  std::atomic<uint64_t> conflict_{0};
  std::atomic<uint64_t> retried_{0};
  std::atomic<uint64_t> errors_stored_{0};
  std::atomic<uint64_t> lowest_live_hint_{1};
  std::atomic<bool> connected_{false};
  mutable Mutex stats_mu_;
  std::map<std::string, uint64_t> rejected_by_reason_ CAREHUB_GUARDED_BY(stats_mu_);
  std::string hub_problem_ CAREHUB_GUARDED_BY(stats_mu_);
  LogRateLimiter refused_log_limit_{5};

  int wake_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<bool> closed_{false};
  std::thread thread_;
};

}  // namespace

Result<std::unique_ptr<Publisher>> Publisher::Open(PublisherOptions options) {
  if (options.outbox_dir.empty()) {
    return Status::Error("bad_options", "outbox_dir is required");
  }
  auto p = std::make_unique<PublisherImpl>(std::move(options));
  Status s = p->Init();
  if (!s.ok()) {
    return s;
  }
  return std::unique_ptr<Publisher>(std::move(p));
}

}  // namespace carehub::client
