#include "replication_source.h"

#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "carehub/core/log.h"
#include "carehub/core/strings.h"
#include "carehub/hub/store/thread_setup.h"
#include "file_digest.h"
#include "zap_handler.h"

namespace carehub::hub {
namespace {

using Steady = std::chrono::steady_clock;

auto Log() { return Logger("replication"); }

}  // namespace

ReplicationSource::ReplicationSource(zmq::context_t& context, ReplicationSourceOptions options,
                                     Store* store, metrics::Registry* metrics, uint64_t epoch)
    : options_(std::move(options)),
      store_(store),
      metrics_(metrics),
      epoch_(epoch),
      socket_(context, zmq::socket_type::router),
      wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      shipped_bytes_metric_(
          metrics->GetCounter("carehub_replication_shipped_bytes_total",
                              "Bytes of changes and copies sent to the standby.")),
      copies_metric_(metrics->GetCounter("carehub_replication_full_copies_total",
                                         "Full copies of the store sent to a standby.")),
      sync_lost_metric_(metrics->GetCounter("carehub_replication_sync_lost_total",
                                            "Times the standby left sync (gone or too slow).")) {}

ReplicationSource::~ReplicationSource() {
  Stop();
  if (wake_fd_ >= 0) {
    close(wake_fd_);
  }
}

Result<std::string> ReplicationSource::Bind() {
  try {
    socket_.set(zmq::sockopt::linger, 0);
    // Flow control is the byte window (options_.window_bytes), not the high-water mark: a frame
    // dropped by a full queue would be a gap in the standby's log.
    socket_.set(zmq::sockopt::sndhwm, 0);
    socket_.set(zmq::sockopt::rcvhwm, 0);
    socket_.set(zmq::sockopt::router_mandatory, 1);
    MakeCurveServer(socket_, options_.curve_secret_key, kReplicationZapDomain);
    socket_.bind(options_.endpoint);
    return socket_.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return Status::Error("bind_failed",
                         "cannot bind replication endpoint " + options_.endpoint + ": " + e.what());
  }
}

void ReplicationSource::Start() {
  store_->changes().SetObserver([this](uint64_t first, uint64_t last, std::string_view data) {
    OnCommit(first, last, data);
  });
  block_on_loss_.store(options_.block_on_loss);
  {
    MutexLock lock(mu_);
    UpdateAccepting();
  }
  // Gauges read at scrape time from the snapshot operators also see in /api/v1/replication.
  refresher_ = metrics_->AddRefresher([this] {
    const auto s = Snapshot();
    metrics_
        ->GetGauge("carehub_replication_standby_in_sync",
                   "1 while a standby has acknowledged everything committed (sync mode waits "
                   "for it); 0 otherwise.")
        .Set(s.in_sync ? 1 : 0);
    metrics_->GetGauge("carehub_replication_standby_connected", "1 while a standby is connected.")
        .Set(s.standby_connected ? 1 : 0);
    metrics_
        ->GetGauge("carehub_replication_lag_records",
                   "Store records committed here and not acknowledged by the standby.")
        .Set(static_cast<double>(s.position - std::min(s.position, s.acked)));
    metrics_
        ->GetGauge("carehub_replication_lag_seconds",
                   "Age of the oldest change the standby has not acknowledged.")
        .Set(s.lag_ms / 1000.0);
    metrics_
        ->GetGauge("carehub_replication_accepting_writes",
                   "0 while ingest answers RETRY for want of a standby in sync (block).")
        .Set(AcceptingWrites() ? 1 : 0);
  });
  thread_ = std::thread([this] { Run(); });
}

void ReplicationSource::Stop() {
  if (stop_.exchange(true)) {
    return;
  }
  store_->changes().SetObserver(nullptr);
  if (refresher_ != 0) {
    metrics_->RemoveRefresher(refresher_);
    refresher_ = 0;
  }
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  if (thread_.joinable()) {
    thread_.join();
  }
  EndCopy();
  MutexLock lock(mu_);
  in_sync_ = false;
  connected_ = false;
  acked_cv_.NotifyAll();
}

void ReplicationSource::OnCommit(uint64_t first, uint64_t last, std::string_view data) {
  {
    MutexLock lock(mu_);
    recent_.push_back(
        Recent{first, last, std::make_shared<const std::string>(data), Steady::now()});
    recent_bytes_ += data.size();
    // Older changes stay readable from the write-ahead log.
    while (recent_bytes_ > options_.memory_bytes && recent_.size() > 1) {
      recent_bytes_ -= recent_.front().data->size();
      recent_.pop_front();
    }
  }
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
}

Status ReplicationSource::WaitReplicated(uint64_t position) {
  if (!options_.synchronous) {
    return Status::Ok();
  }
  auto unavailable = [this] {
    return block_on_loss_.load()
               ? Status::Error("standby_unavailable",
                               "no standby in sync: nothing is acknowledged on one disk only")
               : Status::Ok();
  };
  MutexLock lock(mu_);
  if (acked_ >= position) {
    return Status::Ok();
  }
  if (!in_sync_) {
    return unavailable();
  }
  const auto deadline = Steady::now() + options_.sync_timeout;
  while (acked_ < position && in_sync_) {
    if (acked_cv_.WaitUntil(mu_, deadline) == std::cv_status::timeout && acked_ < position) {
      LeaveSync("did not acknowledge position " + std::to_string(position) + " within " +
                std::to_string(options_.sync_timeout.count()) + " ms");
      break;
    }
  }
  return acked_ >= position ? Status::Ok() : unavailable();
}

bool ReplicationSource::AcceptingWrites() const { return accepting_.load(); }

void ReplicationSource::UpdateAccepting() {
  accepting_.store(in_sync_ || !block_on_loss_.load() || !options_.synchronous);
}

void ReplicationSource::SetBlockOnLoss(bool block) {
  MutexLock lock(mu_);
  if (block_on_loss_.exchange(block) != block) {
    Log()->info("on standby loss: {}", block ? "block" : "degrade");
  }
  UpdateAccepting();
  acked_cv_.NotifyAll();
}

Status ReplicationSource::WaitCaughtUp(std::chrono::milliseconds timeout) {
  const auto deadline = Steady::now() + timeout;
  MutexLock lock(mu_);
  while (acked_ < store_->changes().Position()) {
    if (acked_cv_.WaitUntil(mu_, deadline) == std::cv_status::timeout) {
      if (acked_ < store_->changes().Position()) {
        return Status::Error("standby_behind",
                             "the standby acknowledged position " + std::to_string(acked_) +
                                 " of " + std::to_string(store_->changes().Position()) +
                                 " within " + std::to_string(timeout.count()) + " ms");
      }
    }
  }
  return Status::Ok();
}

ReplicationSnapshot ReplicationSource::Snapshot() const {
  ReplicationSnapshot out;
  MutexLock lock(mu_);
  out.standby_connected = connected_;
  out.standby_name = standby_name_;
  out.in_sync = in_sync_;
  out.copying = copying_;
  out.position = store_->changes().Position();
  out.acked = acked_;
  // The oldest change not acknowledged (recent_ is in position order).
  auto oldest = std::upper_bound(recent_.begin(), recent_.end(), acked_,
                                 [](uint64_t p, const Recent& r) { return p < r.last; });
  if (oldest != recent_.end()) {
    out.lag_ms = std::chrono::duration<double, std::milli>(Steady::now() - oldest->at).count();
  }
  out.bytes_shipped = bytes_shipped_.load();
  out.full_copies = full_copies_.load();
  out.epoch = epoch_;
  return out;
}

void ReplicationSource::LeaveSync(const std::string& why) {
  if (in_sync_) {
    in_sync_ = false;
    sync_lost_metric_.Inc();
    Log()->error("standby {} left sync: {}; {}", standby_name_, why,
                 block_on_loss_.load() && options_.synchronous
                     ? "answering RETRY until it is back in sync (block)"
                     : "accepting on this hub's disk only (async or degrade)");
  }
  // An async pair never waited for its standby, and does not start refusing when it leaves.
  UpdateAccepting();
  acked_cv_.NotifyAll();
}

void ReplicationSource::NoteAck(uint64_t position) {
  MutexLock lock(mu_);
  if (position > acked_) {
    acked_ = position;
  }
  // Everything committed is on the standby: from now on every commit waits for it.
  if (!in_sync_ && !copying_ && connected_ && acked_ >= store_->changes().Position()) {
    in_sync_ = true;
    UpdateAccepting();
    Log()->info("standby {} is in sync at position {}", standby_name_, acked_);
  }
  acked_cv_.NotifyAll();
}

void ReplicationSource::Run() {
  pthread_setname_np(pthread_self(), "carehub-repl");
  PrepareStoreThread();
  auto last_heartbeat = Steady::now();
  while (!stop_.load()) {
    zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, wake_fd_, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 2, options_.heartbeat);
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) {
        continue;
      }
      Log()->error("replication poll failed: {}", e.what());
      return;
    }
    if (items[1].revents & ZMQ_POLLIN) {
      uint64_t drained = 0;
      (void)!read(wake_fd_, &drained, sizeof(drained));
    }
    if (items[0].revents & ZMQ_POLLIN) {
      for (int n = 0; n < 1000; ++n) {
        std::vector<zmq::message_t> parts;
        auto got =
            zmq::recv_multipart(socket_, std::back_inserter(parts), zmq::recv_flags::dontwait);
        if (!got) {
          break;
        }
        if (parts.size() != 2) {
          continue;
        }
        v1::ReplicationFrame frame;
        if (!frame.ParseFromArray(parts[1].data(), static_cast<int>(parts[1].size()))) {
          Log()->warn("undecodable replication frame ignored");
          continue;
        }
        Handle(parts[0].to_string(), frame);
      }
    }
    if (session_) {
      const auto silent = Steady::now() - session_->last_heard;
      if (silent > options_.sync_timeout + 4 * options_.heartbeat) {
        DropSession(
            "silent for " +
            std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(silent).count()) +
            " ms");
      }
    }
    if (session_ && !session_->awaiting_hello) {
      if (session_->copying) {
        SendCopyChunks();
      } else {
        SendChanges();
      }
    }
    if (Steady::now() - last_heartbeat >= options_.heartbeat) {
      SendHeartbeat();
      last_heartbeat = Steady::now();
    }
  }
}

void ReplicationSource::Handle(const std::string& routing_id, const v1::ReplicationFrame& frame) {
  if (frame.has_hello()) {
    HandleHello(routing_id, frame.hello());
    return;
  }
  if (!session_ || session_->routing_id != routing_id) {
    Refuse(routing_id, "no_session", "say hello first");
    return;
  }
  session_->last_heard = Steady::now();
  if (frame.has_ack()) {
    if (session_->copying) {
      session_->copy_acked_bytes = frame.ack().copy_bytes();
      return;
    }
    if (frame.ack().copy_bytes() > 0 || session_->awaiting_hello) {
      return;  // a late ack of the copy, before the standby opened it and said hello
    }
    // A standby cannot have more than it was sent.
    const uint64_t position = std::min(frame.ack().position(), session_->sent);
    auto& inflight = session_->inflight;
    while (!inflight.empty() && inflight.front().first <= position) {
      session_->inflight_bytes -= inflight.front().second;
      inflight.pop_front();
    }
    NoteAck(position);
  }
}

bool ReplicationSource::CanFollow(uint64_t epoch, uint64_t position, std::string* why) const {
  auto epochs = store_->changes().Epochs();
  if (!epochs.ok()) {
    *why = epochs.status().ToString();
    return false;
  }
  if (epoch > epoch_) {
    *why = "the standby has seen epoch " + std::to_string(epoch) + ", newer than this primary's " +
           std::to_string(epoch_);
    return false;
  }
  for (const auto& e : epochs.value()) {
    // The first epoch after the standby's (numbers need not be consecutive): its history ends
    // at that fork.
    if (e.number > epoch) {
      if (position > e.fork) {
        *why = "its log runs to " + std::to_string(position) + ", past the fork of epoch " +
               std::to_string(e.number) + " at " + std::to_string(e.fork);
        return false;
      }
      break;
    }
  }
  if (position > store_->changes().Position()) {
    *why = "its log runs to " + std::to_string(position) + ", past this primary's " +
           std::to_string(store_->changes().Position());
    return false;
  }
  return true;
}

void ReplicationSource::HandleHello(const std::string& routing_id, const v1::ReplicaHello& hello) {
  if (hello.store_format() < kStoreFormat) {
    // Before anything else: its binary would misread what this one writes (e.g. see only the
    // first event of each route-index entry), so it must be upgraded before it can follow.
    Refuse(routing_id, "store_format",
           "the standby reads store format " + std::to_string(hello.store_format()) +
               ", this primary writes format " + std::to_string(kStoreFormat) +
               ": upgrade the standby's carehub");
    Log()->error("standby {} reads store format {}, this primary writes {}: upgrade it",
                 hello.name(), hello.store_format(), kStoreFormat);
    return;
  }
  if (session_ && session_->routing_id != routing_id) {
    if (Steady::now() - session_->last_heard < options_.sync_timeout) {
      Refuse(routing_id, "second_standby",
             "standby " + session_->name + " is connected; one standby per primary");
      return;
    }
    DropSession("replaced by a new connection from " + hello.name());
  }
  if (hello.epoch() > epoch_) {
    // This node is the stale one: a standby knows a newer primary. Never overwrite it.
    Refuse(routing_id, "stale_primary",
           "the standby has seen epoch " + std::to_string(hello.epoch()) +
               ", newer than this primary's " + std::to_string(epoch_));
    Log()->error("standby {} knows epoch {}, newer than ours ({}): this hub is not the primary",
                 hello.name(), hello.epoch(), epoch_);
    return;
  }
  EndCopy();
  session_ = Session();
  session_->routing_id = routing_id;
  session_->name = hello.name();
  session_->last_heard = Steady::now();
  {
    MutexLock lock(mu_);
    connected_ = true;
    standby_name_ = hello.name();
    in_sync_ = false;
    acked_ = 0;
  }
  std::string why;
  // An empty standby of an empty primary has nothing to copy.
  const bool want_copy = hello.want_copy() && store_->changes().Position() > 0;
  if (!want_copy && CanFollow(hello.epoch(), hello.position(), &why)) {
    session_->sent = hello.position();
    {
      MutexLock lock(mu_);
      acked_ = hello.position();
    }
    Log()->info("standby {} connected at position {} (epoch {}); primary at {}", hello.name(),
                hello.position(), hello.epoch(), store_->changes().Position());
    NoteAck(hello.position());
    return;
  }
  Log()->warn("standby {} needs a full copy: {}", hello.name(),
              want_copy ? "its store is empty" : why);
  StartCopy();
}

void ReplicationSource::StartCopy() {
  auto& s = *session_;
  s.copy_dir = store_->dir() / ("replication-copy-" + std::to_string(getpid()));
  std::error_code ec;
  std::filesystem::remove_all(s.copy_dir, ec);
  auto position = store_->changes().Checkpoint(s.copy_dir);
  if (!position.ok()) {
    Log()->error("cannot make a copy for standby {}: {}", s.name, position.status().ToString());
    Refuse(s.routing_id, "copy_failed", position.status().ToString());
    DropSession("copy failed");
    return;
  }
  v1::ReplicationFrame frame;
  auto* begin = frame.mutable_copy_begin();
  begin->set_position(position.value());
  begin->set_epoch(epoch_);
  for (const auto& entry : std::filesystem::directory_iterator(s.copy_dir)) {
    if (!entry.is_regular_file()) {
      continue;
    }
    auto sha = FileSha256(entry.path());
    if (!sha.ok()) {
      Refuse(s.routing_id, "copy_failed", sha.status().ToString());
      DropSession("copy failed");
      return;
    }
    auto* f = begin->add_files();
    f->set_name(entry.path().filename().string());
    f->set_size(entry.file_size());
    f->set_sha256(sha.value());
  }
  s.copy_files.assign(begin->files().begin(), begin->files().end());
  s.copying = true;
  s.copy_file = 0;
  s.copy_offset = 0;
  s.copy_sent_bytes = 0;
  s.copy_acked_bytes = 0;
  s.copy_position = position.value();
  {
    MutexLock lock(mu_);
    copying_ = true;
  }
  full_copies_.fetch_add(1);
  copies_metric_.Inc();
  Log()->info("sending standby {} a full copy at position {}: {} files", s.name, position.value(),
              s.copy_files.size());
  Send(s.routing_id, frame);
}

void ReplicationSource::SendCopyChunks() {
  auto& s = *session_;
  std::vector<char> buffer(options_.copy_chunk_bytes);
  while (s.copy_file < s.copy_files.size() &&
         s.copy_sent_bytes - s.copy_acked_bytes < options_.window_bytes) {
    const auto& file = s.copy_files[s.copy_file];
    std::ifstream in(s.copy_dir / file.name(), std::ios::binary);
    in.seekg(static_cast<std::streamoff>(s.copy_offset));
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const auto n = static_cast<uint64_t>(in.gcount());
    if (n == 0 && s.copy_offset < file.size()) {
      Refuse(s.routing_id, "copy_failed", "cannot read " + file.name());
      DropSession("copy failed");
      return;
    }
    if (n > 0) {
      v1::ReplicationFrame frame;
      auto* chunk = frame.mutable_copy_chunk();
      chunk->set_name(file.name());
      chunk->set_offset(s.copy_offset);
      chunk->set_data(buffer.data(), n);
      Send(s.routing_id, frame);
      s.copy_offset += n;
      s.copy_sent_bytes += n;
    }
    if (s.copy_offset >= file.size()) {
      ++s.copy_file;
      s.copy_offset = 0;
    }
  }
  if (s.copy_file == s.copy_files.size()) {
    v1::ReplicationFrame frame;
    frame.mutable_copy_end();
    Send(s.routing_id, frame);
    Log()->info("full copy sent to standby {} ({} bytes); following from position {}", s.name,
                s.copy_sent_bytes, s.copy_position);
    s.copying = false;
    s.awaiting_hello = true;  // it opens the copy, then says hello from its position
    s.sent = s.copy_position;
    EndCopy();
    MutexLock lock(mu_);
    copying_ = false;
    acked_ = 0;  // until the standby has opened the copy and acknowledges its position
  }
}

void ReplicationSource::EndCopy() {
  if (session_ && !session_->copy_dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(session_->copy_dir, ec);
    session_->copy_dir.clear();
  }
}

Status ReplicationSource::CollectChanges(uint64_t from, v1::Changes* out, size_t* bytes) {
  std::vector<Recent> picked;
  bool from_memory = false;
  {
    MutexLock lock(mu_);
    if (!recent_.empty() && recent_.front().first <= from) {
      auto it = std::lower_bound(recent_.begin(), recent_.end(), from,
                                 [](const Recent& r, uint64_t p) { return r.last < p; });
      if (it == recent_.end()) {
        return Status::Ok();
      }
      // Else `from` falls inside a change (not with our own boundaries): the log cuts it.
      from_memory = it->first == from;
      for (size_t taken = 0; from_memory && it != recent_.end() && taken < options_.max_frame_bytes;
           ++it) {
        picked.push_back(*it);
        taken += it->data->size();
      }
    }
  }
  if (from_memory) {
    for (const auto& r : picked) {
      auto* c = out->add_changes();
      c->set_first(r.first);
      c->set_last(r.last);
      c->set_data(*r.data);
      *bytes += r.data->size();
    }
    return Status::Ok();
  }
  return store_->changes().ReadSince(from, options_.max_frame_bytes, [&](Change change) {
    auto* c = out->add_changes();
    c->set_first(change.first);
    c->set_last(change.last);
    *bytes += change.data.size();
    c->set_data(std::move(change.data));
    return true;
  });
}

void ReplicationSource::SendChanges() {
  auto& s = *session_;
  // Bound what is shipped and not acknowledged (the standby applies at its disk's pace).
  while (s.sent < store_->changes().Position() && s.inflight_bytes < options_.window_bytes) {
    v1::ReplicationFrame frame;
    auto* changes = frame.mutable_changes();
    size_t bytes = 0;
    Status st = CollectChanges(s.sent + 1, changes, &bytes);
    if (!st.ok()) {
      if (st.code() == "change_log_gone") {
        Log()->warn("standby {} at position {} is behind what the log keeps: {}", s.name, s.sent,
                    st.message());
        StartCopy();
      } else {
        Log()->error("cannot read changes for standby {}: {}", s.name, st.ToString());
      }
      return;
    }
    if (changes->changes_size() == 0) {
      return;
    }
    changes->set_primary_position(store_->changes().Position());
    changes->set_epoch(epoch_);
    s.sent = changes->changes(changes->changes_size() - 1).last();
    s.inflight.emplace_back(s.sent, bytes);
    s.inflight_bytes += bytes;
    Send(s.routing_id, frame);
    bytes_shipped_.fetch_add(bytes);
    shipped_bytes_metric_.Inc(bytes);
  }
}

void ReplicationSource::SendHeartbeat() {
  if (!session_) {
    return;
  }
  v1::ReplicationFrame frame;
  auto* hb = frame.mutable_heartbeat();
  hb->set_primary_position(store_->changes().Position());
  hb->set_epoch(epoch_);
  hb->set_sent_at_unix_ms(ToUnixMillis(std::chrono::system_clock::now()));
  Send(session_->routing_id, frame);
}

void ReplicationSource::Refuse(const std::string& routing_id, const std::string& code,
                               const std::string& message) {
  v1::ReplicationFrame frame;
  frame.mutable_refused()->set_code(code);
  frame.mutable_refused()->set_message(message);
  Send(routing_id, frame);
}

void ReplicationSource::Send(const std::string& routing_id, const v1::ReplicationFrame& frame) {
  std::string bytes = frame.SerializeAsString();
  try {
    if (socket_.send(zmq::buffer(routing_id),
                     zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      (void)socket_.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
    }
  } catch (const zmq::error_t& e) {
    // EHOSTUNREACH: the standby's connection is gone; it says hello again when it is back.
    if (session_ && session_->routing_id == routing_id) {
      DropSession(std::string("send failed: ") + e.what());
    }
  }
}

void ReplicationSource::DropSession(const std::string& why) {
  if (!session_) {
    return;
  }
  Log()->warn("standby {} disconnected: {}", session_->name, why);
  EndCopy();
  session_.reset();
  MutexLock lock(mu_);
  connected_ = false;
  copying_ = false;
  LeaveSync(why);
}

}  // namespace carehub::hub
