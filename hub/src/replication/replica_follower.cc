#include "replica_follower.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <fstream>

#include "carehub/core/log.h"
#include "carehub/core/strings.h"
#include "carehub/hub/store/thread_setup.h"
#include "file_digest.h"

namespace carehub::hub {
namespace {

using Steady = std::chrono::steady_clock;

auto Log() { return Logger("replication"); }

// Present while a full copy is being moved into the data dir: a store found with it is half
// swapped and is discarded.
constexpr const char* kCopyMarker = "REPLICA_COPY_IN_PROGRESS";
constexpr const char* kCopyDir = "replica-copy";
// Files of the data dir that are not the store's.
bool IsStoreFile(const std::filesystem::path& p) {
  const auto name = p.filename().string();
  return name != kCopyDir && name != kCopyMarker && name != "endpoints.json";
}

Status SyncPath(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Status::Error("store_io_error", "cannot open " + path.string() + " to sync it");
  }
  const int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? Status::Ok() : Status::Error("store_io_error", "cannot fsync " + path.string());
}

void RemoveStoreFiles(const std::filesystem::path& dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (IsStoreFile(entry.path())) {
      std::filesystem::remove_all(entry.path(), ec);
    }
  }
}

}  // namespace

ReplicaFollower::ReplicaFollower(ReplicaFollowerOptions options, metrics::Registry* metrics)
    : options_(std::move(options)),
      copy_dir_(options_.store.dir / kCopyDir),
      position_metric_(metrics->GetGauge("carehub_replication_applied_position",
                                         "Position of the last change applied on this standby.")),
      lag_metric_(metrics->GetGauge("carehub_replication_standby_lag_changes",
                                    "Records the primary has committed and this standby has not "
                                    "applied, as of the primary's last frame.")),
      applied_bytes_metric_(metrics->GetCounter("carehub_replication_applied_bytes_total",
                                                "Bytes of changes applied on this standby.")),
      copies_metric_(metrics->GetCounter("carehub_replication_full_copies_total",
                                         "Full copies of the store received from a primary.")),
      stale_frames_metric_(metrics->GetCounter(
          "carehub_replication_stale_primary_total",
          "Connections to a primary of an older epoch than this standby has seen (refused).")) {
  options_.store.follower = true;
}

ReplicaFollower::~ReplicaFollower() { Stop(); }

Result<std::unique_ptr<ReplicaFollower>> ReplicaFollower::Open(ReplicaFollowerOptions options,
                                                               metrics::Registry* metrics) {
  std::unique_ptr<ReplicaFollower> f(new ReplicaFollower(std::move(options), metrics));
  std::error_code ec;
  std::filesystem::create_directories(f->options_.store.dir, ec);
  if (std::filesystem::exists(f->options_.store.dir / kCopyMarker)) {
    Log()->warn(
        "{} holds a half-swapped copy from a previous run: discarding it; a full copy "
        "will be asked for",
        f->options_.store.dir.string());
    RemoveStoreFiles(f->options_.store.dir);
    std::filesystem::remove(f->options_.store.dir / kCopyMarker, ec);
  }
  Status s = f->OpenStore();
  if (!s.ok()) {
    return s;
  }
  return f;
}

Status ReplicaFollower::OpenStore() {
  auto store = Store::Open(options_.store);
  if (!store.ok()) {
    return store.status();
  }
  MutexLock lock(mu_);
  store_ = std::move(store).value();
  position_metric_.Set(static_cast<double>(store_->changes().Position()));
  return Status::Ok();
}

void ReplicaFollower::Start() {
  thread_ = std::thread([this] { Run(); });
}

void ReplicaFollower::Stop() {
  stop_.store(true);
  if (thread_.joinable()) {
    thread_.join();
  }
}

FollowerSnapshot ReplicaFollower::Snapshot() const {
  FollowerSnapshot out;
  MutexLock lock(mu_);
  out.connected = connected_;
  out.copying = copying_;
  out.primary_position = primary_position_;
  out.full_copies = full_copies_;
  out.last_error = last_error_;
  if (store_) {
    out.position = store_->changes().Position();
    auto epoch = store_->changes().CurrentEpoch();
    out.epoch = epoch.ok() ? epoch.value() : 0;
  }
  return out;
}

bool ReplicaFollower::CaughtUp() const {
  MutexLock lock(mu_);
  return store_ && !copying_ && store_->changes().Position() >= primary_position_;
}

void ReplicaFollower::NoteError(const std::string& error) {
  Log()->warn("following {}: {}", options_.primary_endpoint, error);
  MutexLock lock(mu_);
  last_error_ = error;
}

void ReplicaFollower::Run() {
  pthread_setname_np(pthread_self(), "carehub-follow");
  PrepareStoreThread();
  zmq::context_t context(1);
  auto backoff = std::chrono::milliseconds(100);
  while (!stop_.load()) {
    const auto started = Steady::now();
    std::string why = Follow(context);
    {
      MutexLock lock(mu_);
      connected_ = false;
    }
    if (stop_.load()) {
      break;
    }
    NoteError(why);
    // A connection that worked for a while retries at once; repeated failures back off.
    backoff = Steady::now() - started > std::chrono::seconds(5)
                  ? std::chrono::milliseconds(100)
                  : std::min(backoff * 2, std::chrono::milliseconds(1000));
    const auto until = Steady::now() + backoff;
    while (!stop_.load() && Steady::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
}

void ReplicaFollower::Send(zmq::socket_t& socket, const v1::ReplicationFrame& frame) {
  std::string bytes = frame.SerializeAsString();
  try {
    (void)socket.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
  } catch (const zmq::error_t&) {
  }
}

void ReplicaFollower::SendHello(zmq::socket_t& socket) {
  v1::ReplicationFrame frame;
  auto* hello = frame.mutable_hello();
  hello->set_name(options_.name);
  MutexLock lock(mu_);
  const uint64_t position = store_->changes().Position();
  auto epoch = store_->changes().CurrentEpoch();
  hello->set_position(position);
  hello->set_epoch(epoch.ok() ? epoch.value() : 0);
  known_epoch_.store(std::max(known_epoch_.load(), hello->epoch()));
  hello->set_want_copy(position == 0);
  hello->set_store_format(kStoreFormat);
  std::string bytes = frame.SerializeAsString();
  try {
    (void)socket.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
  } catch (const zmq::error_t&) {
  }
}

std::string ReplicaFollower::Follow(zmq::context_t& context) {
  // A copy cut short by the last connection is started over by the primary.
  copy_.reset();
  bool have_store = false;
  {
    MutexLock lock(mu_);
    copying_ = false;
    have_store = store_ != nullptr;
  }
  if (!have_store) {
    // A failed swap closed the store: start again from an empty one (the primary sends a copy).
    RemoveStoreFiles(options_.store.dir);
    std::error_code ec;
    std::filesystem::remove(options_.store.dir / kCopyMarker, ec);
    Status opened = OpenStore();
    if (!opened.ok()) {
      return "cannot open the standby's store: " + opened.ToString();
    }
  }
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  try {
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::rcvhwm, 0);
    // Not `immediate`: the hello is queued until the connection is up (a fresh socket per
    // connection, so nothing stale is queued).
    if (options_.curve) {
      socket.set(zmq::sockopt::curve_serverkey, options_.curve->server_public);
      socket.set(zmq::sockopt::curve_publickey, options_.curve->client_public);
      socket.set(zmq::sockopt::curve_secretkey, options_.curve->client_secret);
    }
    socket.connect(options_.primary_endpoint);
  } catch (const zmq::error_t& e) {
    return std::string("cannot connect: ") + e.what();
  }
  SendHello(socket);
  auto last_heard = Steady::now();
  auto last_sent = Steady::now();
  bool heard_once = false;
  while (!stop_.load()) {
    zmq::pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 1, options_.heartbeat);
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) {
        continue;
      }
      return std::string("poll failed: ") + e.what();
    }
    bool applied = false;
    if (items[0].revents & ZMQ_POLLIN) {
      // Take every frame that is waiting, then sync once and acknowledge once: the standby's
      // fsync is shared by as many of the primary's commits as arrived meanwhile.
      for (int n = 0; n < 256; ++n) {
        zmq::message_t msg;
        if (!socket.recv(msg, zmq::recv_flags::dontwait)) {
          break;
        }
        last_heard = Steady::now();
        if (!heard_once) {
          heard_once = true;
          MutexLock lock(mu_);
          connected_ = true;
          last_error_.clear();
        }
        v1::ReplicationFrame frame;
        if (!frame.ParseFromArray(msg.data(), static_cast<int>(msg.size()))) {
          return "undecodable frame from the primary";
        }
        // Fencing: a primary of an older epoch than this store has seen was superseded (it
        // was paused or cut off while another hub was elected); nothing of it is applied.
        const uint64_t frame_epoch = frame.has_changes()      ? frame.changes().epoch()
                                     : frame.has_heartbeat()  ? frame.heartbeat().epoch()
                                     : frame.has_copy_begin() ? frame.copy_begin().epoch()
                                                              : known_epoch_.load();
        if (frame_epoch < known_epoch_.load()) {
          stale_frames_metric_.Inc();
          return "stale_primary: the primary at " + options_.primary_endpoint + " sends epoch " +
                 std::to_string(frame_epoch) + ", older than epoch " +
                 std::to_string(known_epoch_.load()) + " this store has seen";
        }
        if (frame.has_changes()) {
          Status s = ApplyChanges(frame.changes());
          if (!s.ok()) {
            return s.ToString();
          }
          applied = true;
        } else if (frame.has_heartbeat()) {
          MutexLock lock(mu_);
          primary_position_ = std::max(primary_position_, frame.heartbeat().primary_position());
        } else if (frame.has_copy_begin()) {
          Status s = BeginCopy(frame.copy_begin());
          if (!s.ok()) {
            return s.ToString();
          }
        } else if (frame.has_copy_chunk()) {
          Status s = WriteChunk(frame.copy_chunk());
          if (!s.ok()) {
            return s.ToString();
          }
          v1::ReplicationFrame ack;
          ack.mutable_ack()->set_copy_bytes(copy_bytes_);
          Send(socket, ack);
        } else if (frame.has_copy_end()) {
          Status s = FinishCopy();
          if (!s.ok()) {
            return s.ToString();
          }
          SendHello(socket);  // follow on from the copy's position
        } else if (frame.has_refused()) {
          return "the primary refused: " + frame.refused().code() + ": " +
                 frame.refused().message();
        }
      }
    }
    if (applied) {
      uint64_t position = 0;
      {
        MutexLock lock(mu_);
        Status s = store_->SyncWal();
        if (!s.ok()) {
          return "cannot sync the standby's write-ahead log: " + s.ToString();
        }
        position = store_->changes().Position();
        position_metric_.Set(static_cast<double>(position));
        lag_metric_.Set(
            primary_position_ > position ? static_cast<double>(primary_position_ - position) : 0.0);
      }
      v1::ReplicationFrame ack;
      ack.mutable_ack()->set_position(position);
      Send(socket, ack);
      last_sent = Steady::now();
    }
    if (Steady::now() - last_sent >= options_.heartbeat) {
      // The ack doubles as the standby's heartbeat.
      v1::ReplicationFrame ack;
      if (copy_) {
        ack.mutable_ack()->set_copy_bytes(copy_bytes_);
      } else {
        MutexLock lock(mu_);
        ack.mutable_ack()->set_position(store_->changes().Position());
      }
      Send(socket, ack);
      last_sent = Steady::now();
    }
    if (Steady::now() - last_heard > options_.primary_timeout) {
      return "no word from the primary for " + std::to_string(options_.primary_timeout.count()) +
             " ms";
    }
  }
  return "stopping";
}

Status ReplicaFollower::ApplyChanges(const v1::Changes& changes) {
  MutexLock lock(mu_);
  primary_position_ = std::max(primary_position_, changes.primary_position());
  for (const auto& c : changes.changes()) {
    const uint64_t position = store_->changes().Position();
    if (c.last() <= position) {
      continue;  // already applied (a frame sent again after a reconnect)
    }
    Change change{c.first(), c.last(), c.data()};
    Status s = store_->changes().Apply(change, /*sync=*/false);
    if (!s.ok()) {
      return s;
    }
    applied_bytes_metric_.Inc(c.data().size());
  }
  return Status::Ok();
}

Status ReplicaFollower::BeginCopy(const v1::CopyBegin& begin) {
  std::error_code ec;
  std::filesystem::remove_all(copy_dir_, ec);
  std::filesystem::create_directories(copy_dir_, ec);
  if (ec) {
    return Status::Error("store_io_error", "cannot create " + copy_dir_.string());
  }
  copy_ = begin;
  copy_bytes_ = 0;
  {
    MutexLock lock(mu_);
    copying_ = true;
  }
  Log()->info("receiving a full copy at position {}: {} files", begin.position(),
              begin.files_size());
  return Status::Ok();
}

Status ReplicaFollower::WriteChunk(const v1::CopyChunk& chunk) {
  if (!copy_) {
    return Status::Error("replication_protocol", "a copy chunk without a copy");
  }
  const auto name = std::filesystem::path(chunk.name()).filename();
  if (name.empty() || name.string() != chunk.name()) {
    return Status::Error("replication_protocol", "bad file name in copy: " + chunk.name());
  }
  std::fstream out(copy_dir_ / name, std::ios::binary | std::ios::in | std::ios::out);
  if (!out) {
    out.open(copy_dir_ / name, std::ios::binary | std::ios::out);
  }
  out.seekp(static_cast<std::streamoff>(chunk.offset()));
  out.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
  if (!out) {
    return Status::Error("store_io_error", "cannot write " + (copy_dir_ / name).string());
  }
  copy_bytes_ += chunk.data().size();
  return Status::Ok();
}

Status ReplicaFollower::FinishCopy() {
  if (!copy_) {
    return Status::Error("replication_protocol", "copy end without a copy");
  }
  const v1::CopyBegin begin = *copy_;
  copy_.reset();
  // Verify every file before touching the store.
  for (const auto& f : begin.files()) {
    const auto path = copy_dir_ / f.name();
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec || size != f.size()) {
      return Status::Error("copy_corrupt", f.name() + ": " + std::to_string(ec ? 0 : size) +
                                               " bytes, expected " + std::to_string(f.size()));
    }
    auto sha = FileSha256(path);
    if (!sha.ok() || sha.value() != f.sha256()) {
      return Status::Error("copy_corrupt", f.name() + ": SHA-256 does not match");
    }
    Status synced = SyncPath(path);
    if (!synced.ok()) {
      return synced;
    }
  }
  const auto dir = options_.store.dir;
  { std::ofstream marker(dir / kCopyMarker); }
  (void)SyncPath(dir);
  {
    MutexLock lock(mu_);
    store_.reset();  // close before its files go
  }
  RemoveStoreFiles(dir);
  for (const auto& f : begin.files()) {
    std::error_code ec;
    std::filesystem::rename(copy_dir_ / f.name(), dir / f.name(), ec);
    if (ec) {
      return Status::Error("store_io_error", "cannot move " + f.name() + ": " + ec.message());
    }
  }
  (void)SyncPath(dir);
  std::error_code ec;
  std::filesystem::remove(dir / kCopyMarker, ec);
  std::filesystem::remove_all(copy_dir_, ec);
  (void)SyncPath(dir);
  Status opened = OpenStore();
  if (!opened.ok()) {
    return opened;
  }
  MutexLock lock(mu_);
  copying_ = false;
  ++full_copies_;
  copies_metric_.Inc();
  if (store_->changes().Position() != begin.position()) {
    return Status::Error("copy_corrupt", "the copy opened at position " +
                                             std::to_string(store_->changes().Position()) +
                                             ", expected " + std::to_string(begin.position()));
  }
  Log()->info("full copy in place at position {}", begin.position());
  return Status::Ok();
}

}  // namespace carehub::hub
