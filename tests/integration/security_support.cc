#include "security_support.h"

#include <httplib.h>
#include <signal.h>
#include <zmq.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <zmq.hpp>

namespace carehub::itest::security {
namespace {

size_t CountOccurrences(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

}  // namespace

KeyPair NewKeyPair() {
  char pub[41];
  char sec[41];
  if (zmq_curve_keypair(pub, sec) != 0) {
    return {};
  }
  return {pub, sec};
}

void WriteKeyFile(const std::filesystem::path& path, const KeyPair& keys) {
  {
    std::ofstream out(path);
    out << "# carehub CURVE key pair\npublic: " << keys.pub << "\nsecret: " << keys.sec << "\n";
  }
  // As `carehubctl keygen` writes it: a secret key others can read is refused.
  std::filesystem::permissions(
      path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

std::string IdentitiesYaml(const std::vector<Party>& parties) {
  std::ostringstream out;
  out << "identities:\n";
  for (const auto& p : parties) {
    out << "  " << p.id << ":\n    kind: " << p.kind << "\n";
    if (!p.ods.empty()) {
      out << "    ods: [";
      for (size_t i = 0; i < p.ods.size(); ++i) {
        out << (i ? ", " : "") << p.ods[i];
      }
      out << "]\n";
    }
    if (!p.subscriber.empty()) {
      out << "    subscriber: " << p.subscriber << "\n";
    }
    out << "    public_keys:\n";
    for (const auto& k : p.keys) {
      out << "      - '" << k.pub << "'\n";
    }
  }
  return out.str();
}

Result<std::unique_ptr<CurveHub>> CurveHub::Start(const std::string& tag,
                                                  const std::vector<Party>& parties,
                                                  const std::string& log_level,
                                                  const std::string& log_format) {
  std::unique_ptr<CurveHub> hub(new CurveHub());
  hub->server_ = NewKeyPair();
  WriteKeyFile(hub->keys_dir_.path() / "server.key", hub->server_);
  Status s = hub->WriteIdentities(parties);
  if (!s.ok()) {
    return s;
  }
  const auto agreements = std::filesystem::path(CAREHUB_SOURCE_DIR) / "config" / "agreements.yaml";
  std::string yaml = "security:\n  mode: curve\n  server_key_file: " +
                     (hub->keys_dir_.path() / "server.key").string() +
                     "\n  identities: " + (hub->keys_dir_.path() / "identities.yaml").string() +
                     "\npolicy:\n  agreements: " + agreements.string() +
                     "\nlogging:\n  level: " + log_level + "\n  format: " + log_format + "\n";
  auto process = HubProcess::Start(HubOptions(tag, yaml));
  if (!process.ok()) {
    return process.status();
  }
  hub->hub_ = std::move(process).value();
  return hub;
}

Status CurveHub::WriteIdentities(const std::vector<Party>& parties) {
  return WriteIdentitiesText(IdentitiesYaml(parties));
}

Status CurveHub::WriteIdentitiesText(const std::string& text) {
  auto path = keys_dir_.path() / "identities.yaml";
  auto tmp = keys_dir_.path() / "identities.yaml.tmp";
  {
    std::ofstream out(tmp);
    out << text;
    if (!out) {
      return Status::Error("write_failed", "cannot write " + tmp.string());
    }
  }
  std::filesystem::rename(tmp, path);
  return Status::Ok();
}

Status CurveHub::Reload(bool expect_applied) {
  const std::string applied = "identities reloaded from";
  const std::string refused = "identities reload refused";
  std::string log = hub_->ReadLog();
  size_t applied_before = CountOccurrences(log, applied);
  size_t refused_before = CountOccurrences(log, refused);
  hub_->Signal(SIGHUP);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    log = hub_->ReadLog();
    bool was_applied = CountOccurrences(log, applied) > applied_before;
    bool was_refused = CountOccurrences(log, refused) > refused_before;
    if (was_applied || was_refused) {
      if (was_applied != expect_applied) {
        return Status::Error("reload_outcome", std::string("identities reload was ") +
                                                   (was_applied ? "applied" : "refused"));
      }
      return Status::Ok();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Status::Error("reload_timeout", "the hub logged no identities reload outcome");
}

std::string CurveHub::AdminGet(const std::string& path) const {
  httplib::Client client("http://" + hub_->admin_address());
  client.set_connection_timeout(5);
  client.set_read_timeout(10);
  auto res = client.Get(path);
  return res && res->status == 200 ? res->body : "";
}

double CurveHub::Metric(const std::string& name, const std::string& label_match) const {
  std::istringstream in(AdminGet("/metrics"));
  std::string line;
  double sum = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line.rfind(name, 0) != 0) {
      continue;
    }
    char next = line.size() > name.size() ? line[name.size()] : '\0';
    if (next != '{' && next != ' ') {
      continue;
    }
    auto space = line.rfind(' ');
    if (line.substr(0, space).find(label_match) == std::string::npos) {
      continue;
    }
    sum += std::stod(line.substr(space + 1));
  }
  return sum;
}

CurveDealer::CurveDealer(const std::string& endpoint, const std::optional<KeyPair>& keys,
                         const std::string& server_public)
    : context_(std::make_unique<zmq::context_t>(1)),
      socket_(std::make_unique<zmq::socket_t>(*context_, zmq::socket_type::dealer)) {
  socket_->set(zmq::sockopt::linger, 0);
  socket_->set(zmq::sockopt::sndtimeo, 2000);
  if (keys) {
    socket_->set(zmq::sockopt::curve_serverkey, server_public);
    socket_->set(zmq::sockopt::curve_publickey, keys->pub);
    socket_->set(zmq::sockopt::curve_secretkey, keys->sec);
  }
  // Watched from before the connect, so no handshake event is missed (the client library's
  // ConnectionWatch, which the subscriber and publisher use to explain a silent hub).
  watch_ = std::make_unique<client::ConnectionWatch>(*context_, *socket_, endpoint);
  socket_->connect(endpoint);
}

CurveDealer::~CurveDealer() {
  watch_.reset();  // before its socket closes
  socket_.reset();
  context_.reset();
}

std::string CurveDealer::WaitForHandshake(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    watch_->Poll();
    switch (watch_->state()) {
      case client::LinkState::kHandshakeSucceeded:
        return "succeeded";
      case client::LinkState::kKeyRefused:
        return "refused:" + std::to_string(watch_->value());
      case client::LinkState::kMechanismMismatch:
        return "protocol:" + std::to_string(watch_->value());
      case client::LinkState::kHandshakeFailed:
        return "failed";
      case client::LinkState::kNoConnection:
      case client::LinkState::kConnected:
        break;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return "none";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Status CurveDealer::Send(const v1::Frame& frame) {
  std::string bytes = frame.SerializeAsString();
  try {
    // A DEALER queues until the handshake completes; with no peer ever, the send times out.
    if (!socket_->send(zmq::buffer(bytes), zmq::send_flags::none)) {
      return Status::Error("send_timeout", "the frame could not be queued");
    }
  } catch (const zmq::error_t& e) {
    return Status::Error("send_failed", e.what());
  }
  return Status::Ok();
}

Result<std::optional<v1::Frame>> CurveDealer::Receive(std::chrono::milliseconds timeout) {
  zmq::pollitem_t item{socket_->handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, timeout) <= 0) {
    return std::optional<v1::Frame>();
  }
  zmq::message_t msg;
  if (!socket_->recv(msg, zmq::recv_flags::dontwait)) {
    return std::optional<v1::Frame>();
  }
  v1::Frame frame;
  if (!frame.ParseFromArray(msg.data(), static_cast<int>(msg.size()))) {
    return Status::Error("bad_frame", "the hub sent something that is not a Frame");
  }
  return std::optional<v1::Frame>(std::move(frame));
}

Result<std::optional<v1::PublishResult>> CurveDealer::Publish(const std::vector<v1::Event>& events,
                                                              std::chrono::milliseconds timeout) {
  v1::Frame frame;
  frame.set_version(v1::PROTOCOL_VERSION_1);
  uint64_t batch = next_batch_++;
  frame.mutable_publish()->set_batch_id(batch);
  for (const auto& e : events) {
    *frame.mutable_publish()->add_events() = e;
  }
  Status s = Send(frame);
  if (!s.ok()) {
    // Nothing could even be queued: no answer, as far as the caller is concerned.
    return std::optional<v1::PublishResult>();
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    auto got = Receive(std::max(left, std::chrono::milliseconds(1)));
    if (!got.ok()) {
      return got.status();
    }
    if (!got.value()) {
      break;
    }
    const v1::Frame& f = *got.value();
    if (f.has_publish_result() && f.publish_result().batch_id() == batch) {
      return std::optional<v1::PublishResult>(f.publish_result());
    }
    if (f.has_error() && f.error().batch_id() == batch) {
      return Status::Error(f.error().code(), f.error().message());
    }
  }
  return std::optional<v1::PublishResult>();
}

}  // namespace carehub::itest::security
