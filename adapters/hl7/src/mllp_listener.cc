#include "carehub/adapters/hl7/mllp_listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "carehub/adapters/hl7/mllp_framer.h"
#include "carehub/core/address.h"
#include "carehub/core/log.h"

namespace carehub::adapters::hl7 {
namespace {

constexpr char kLogger[] = "hl7";

std::string PeerName(const sockaddr_storage& addr) {
  char host[INET6_ADDRSTRLEN] = {0};
  uint16_t port = 0;
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    port = ntohs(in->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    port = ntohs(in6->sin6_port);
  }
  return std::string(host) + ":" + std::to_string(port);
}

}  // namespace

MllpListener::MllpListener(MllpOptions options, EventSink& sink, const Clock& clock)
    : options_(std::move(options)),
      processor_(
          ProcessorOptions{MapperOptions{options_.publisher_ods, options_.allowed_facilities},
                           options_.limits, options_.identity},
          sink, clock) {}

MllpListener::~MllpListener() { Stop(); }

Status MllpListener::Start() {
  MutexLock lock(lifecycle_mutex_);
  if (started_) {
    return Status::Error("already_started", "listener already started");
  }
  auto host_port = ParseHostPort(options_.listen);
  if (!host_port.ok()) {
    return Status::Error("invalid_listen_address",
                         "listen '" + options_.listen + "': " + host_port.status().message());
  }
  const std::string& host = host_port->host;
  const std::string port = std::to_string(host_port->port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  int gai = getaddrinfo(host.c_str(), port.c_str(), &hints, &found);
  if (gai != 0 || found == nullptr) {
    return Status::Error("invalid_listen_address",
                         "cannot resolve " + options_.listen + ": " + gai_strerror(gai));
  }
  int fd = -1;
  std::string last_error;
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0) {
      break;
    }
    last_error = std::strerror(errno);
    close(fd);
    fd = -1;
  }
  freeaddrinfo(found);
  if (fd < 0) {
    return Status::Error("bind_failed", "cannot listen on " + options_.listen + ": " + last_error);
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                      : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    close(fd);
    return Status::Error("bind_failed",
                         std::string("cannot create wake pipe: ") + std::strerror(errno));
  }
  listen_fd_ = fd;
  wake_read_fd_ = pipe_fds[0];
  wake_write_fd_ = pipe_fds[1];
  started_ = true;
  acceptor_ = std::thread([this] { AcceptLoop(); });
  Logger(kLogger)->info("MLLP listener on {} (port {}), max message {} bytes", options_.listen,
                        port_, options_.max_message_bytes);
  return Status::Ok();
}

void MllpListener::Stop() {
  MutexLock lock(lifecycle_mutex_);
  if (!started_ || stopped_) {
    return;
  }
  stopped_ = true;
  // The wake pipe is never drained, so every poller (acceptor and connections) sees it readable.
  const char byte = 1;
  [[maybe_unused]] ssize_t n = write(wake_write_fd_, &byte, 1);
  if (acceptor_.joinable()) {
    acceptor_.join();
  }
  close(listen_fd_);
  close(wake_read_fd_);
  close(wake_write_fd_);
  listen_fd_ = wake_read_fd_ = wake_write_fd_ = -1;
  Logger(kLogger)->info("MLLP listener on port {} stopped", port_);
}

MllpStats MllpListener::Stats() const {
  MutexLock lock(stats_mutex_);
  return stats_;
}

void MllpListener::ReapFinished() {
  for (auto it = connections_.begin(); it != connections_.end();) {
    if (it->done->load()) {
      it->thread.join();
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

void MllpListener::AcceptLoop() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_read_fd_, POLLIN, 0}};
    // A bounded wait so finished connection threads are reaped even when no one connects.
    int ready = poll(fds, 2, 1000);
    ReapFinished();
    if (ready < 0) {
      if (errno == EINTR) {
        continue;
      }
      Logger(kLogger)->error("poll on listener failed: {}", std::strerror(errno));
      break;
    }
    if (fds[1].revents != 0) {
      break;
    }
    if ((fds[0].revents & POLLIN) == 0) {
      continue;
    }
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    int fd =
        accept4(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      continue;  // EAGAIN, a peer that went away, or fd exhaustion: try again next round
    }
    std::string peer = PeerName(addr);
    {
      MutexLock lock(stats_mutex_);
      if (connections_.size() >= options_.max_connections) {
        ++stats_.connections_refused;
        close(fd);
        Logger(kLogger)->warn("refused MLLP connection from {}: {} connections open", peer,
                              connections_.size());
        continue;
      }
      ++stats_.connections_accepted;
      ++stats_.connections_active;
    }
    Logger(kLogger)->info("MLLP connection from {}", peer);
    auto done = std::make_shared<std::atomic<bool>>(false);
    connections_.push_back(
        Connection{std::thread([this, fd, peer, done] { ServeConnection(fd, peer, done); }), done});
  }
  for (Connection& c : connections_) {
    c.thread.join();
  }
  connections_.clear();
}

void MllpListener::Record(const ProcessResult& result) {
  MutexLock lock(stats_mutex_);
  switch (result.code) {
    case AckCode::kAccept:
      ++stats_.messages_accepted;
      break;
    case AckCode::kError:
      ++stats_.errors;
      break;
    case AckCode::kReject:
      ++stats_.messages_rejected;
      ++stats_.rejected_by_reason[result.reason];
      break;
  }
}

bool MllpListener::SendFramed(int fd, const std::string& ack) {
  std::string frame;
  frame.reserve(ack.size() + 3);
  frame.push_back(kMllpStartBlock);
  frame += ack;
  frame.push_back(kMllpEndBlock);
  frame.push_back(kMllpCarriageReturn);
  size_t sent = 0;
  while (sent < frame.size()) {
    ssize_t n = send(fd, frame.data() + sent, frame.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd fds[2] = {{fd, POLLOUT, 0}, {wake_read_fd_, POLLIN, 0}};
      int ready = poll(fds, 2, static_cast<int>(options_.idle_timeout.count()));
      if (ready <= 0 || fds[1].revents != 0 || (fds[0].revents & (POLLERR | POLLHUP)) != 0) {
        return false;
      }
      continue;
    }
    return false;
  }
  return true;
}

void MllpListener::ServeConnection(int fd, std::string peer,
                                   std::shared_ptr<std::atomic<bool>> done) {
  MllpFramer framer(options_.max_message_bytes);
  bool open = true;
  std::string reason_closed = "peer closed";
  char buf[16 * 1024];

  auto junk = [this](uint64_t n) {
    if (n > 0) {
      MutexLock lock(stats_mutex_);
      stats_.junk_bytes_discarded += n;
    }
  };
  // Handles one complete frame; false when the connection must close.
  auto finish_frame = [&](const MllpFrame& frame) -> bool {
    junk(framer.TakeDiscarded());
    {
      MutexLock lock(stats_mutex_);
      ++stats_.messages_received;
    }
    ProcessResult result;
    if (frame.oversized) {
      {
        MutexLock lock(stats_mutex_);
        stats_.junk_bytes_discarded += frame.bytes - frame.data.size();
      }
      std::optional<ProcessResult> rejected = processor_.RejectOversized(frame.data);
      if (!rejected.has_value()) {
        MutexLock lock(stats_mutex_);
        ++stats_.messages_rejected;
        ++stats_.rejected_by_reason[std::string(kReasonMessageTooLarge)];
        reason_closed = "oversized message without a readable MSH";
        return false;
      }
      result = std::move(*rejected);
    } else {
      result = processor_.Process(frame.data);
    }
    Record(result);
    if (result.code == AckCode::kAccept) {
      Logger(kLogger)->debug("{} {} accepted ({} events)", result.trigger, result.control_id,
                             result.events);
    } else {
      // Control id, trigger and reason only: never patient identifiers.
      Logger(kLogger)->warn("{} {} from {}: {} {}",
                            result.trigger.empty() ? "message" : result.trigger,
                            result.control_id.empty() ? "(no MSH-10)" : result.control_id, peer,
                            AckCodeName(result.code), result.reason);
    }
    // MSH-15/16 (NE, ER, SU) may ask for no answer to this outcome: then nothing is sent.
    if (!result.ack.empty() && !SendFramed(fd, result.ack)) {
      MutexLock lock(stats_mutex_);
      ++stats_.io_errors;
      reason_closed = "ACK could not be sent";
      return false;
    }
    return true;
  };

  while (open) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake_read_fd_, POLLIN, 0}};
    int ready = poll(fds, 2, static_cast<int>(options_.idle_timeout.count()));
    if (ready < 0) {
      if (errno == EINTR) {
        continue;
      }
      reason_closed = std::string("poll failed: ") + std::strerror(errno);
      break;
    }
    if (fds[1].revents != 0) {
      reason_closed = "listener stopping";
      break;
    }
    if (ready == 0) {
      MutexLock lock(stats_mutex_);
      ++stats_.idle_timeouts;
      reason_closed = "idle timeout";
      break;
    }
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n == 0) {
      break;
    }
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
        continue;
      }
      MutexLock lock(stats_mutex_);
      ++stats_.io_errors;
      reason_closed = std::string("read failed: ") + std::strerror(errno);
      break;
    }
    framer.Feed(std::string_view(buf, static_cast<size_t>(n)), [&](const MllpFrame& frame) {
      open = finish_frame(frame);
      return open;
    });
    junk(framer.TakeDiscarded());
  }
  close(fd);
  {
    MutexLock lock(stats_mutex_);
    --stats_.connections_active;
  }
  Logger(kLogger)->info("MLLP connection from {} closed: {}", peer, reason_closed);
  done->store(true);
}

}  // namespace carehub::adapters::hl7
