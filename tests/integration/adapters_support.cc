#include "adapters_support.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "carehub/client/subscriber.h"

namespace carehub::itest {
namespace {

constexpr char kStartBlock = 0x0B;
constexpr char kEndBlock = 0x1C;
constexpr char kCarriageReturn = 0x0D;

// A segment from field-number/value pairs; unlisted fields are empty.
std::string Seg(const std::string& name, const std::map<int, std::string>& fields) {
  std::string out = name;
  const int last = fields.empty() ? 0 : fields.rbegin()->first;
  for (int i = 1; i <= last; ++i) {
    out += "|";
    auto it = fields.find(i);
    if (it != fields.end()) {
      out += it->second;
    }
  }
  return out + "\r";
}

std::vector<std::string> Split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, sep)) {
    out.push_back(part);
  }
  return out;
}

}  // namespace

// ---- Hub with a direct-care subscription ----

Result<std::string> DirectCareHubYaml(const std::filesystem::path& dir) {
  const std::filesystem::path path = dir / "agreements.yaml";
  std::ofstream out(path);
  out << "subscribers:\n"
      << "  - id: itest-provider\n"
      << "    name: Integration test direct-care provider\n"
      << "    subscriptions:\n"
      << "      - {id: " << kDirectCareSubscription << ", purpose: direct_care}\n"
      << "agreements:\n"
      << "  - id: DSA-ITEST-DIRECT-001\n"
      << "    subscriber: itest-provider\n"
      << "    purpose: direct_care\n"
      << "    legal_basis: \"UK GDPR Art 6(1)(e) and 9(2)(h); integration test\"\n"
      << "    valid_from: 2020-01-01\n"
      << "    valid_until: 2099-12-31\n"
      << "    sources: [\"*\"]\n"
      << "    event_types: [\"*\"]\n"
      << "    patient_fields: identifiable\n";
  if (!out.flush()) {
    return Status::Error("write_failed", "cannot write " + path.string());
  }
  return "policy:\n  agreements: " + path.string() + "\n";
}

Result<std::map<std::pair<std::string, std::string>, v1::Event>> ReadEvents(
    const std::string& subscribe_endpoint, size_t count, std::chrono::milliseconds timeout,
    size_t* redelivered) {
  return ReadEventsFrom(subscribe_endpoint, kDirectCareSubscription, count, timeout, redelivered);
}

Result<std::map<std::pair<std::string, std::string>, v1::Event>> ReadEventsFrom(
    const std::string& subscribe_endpoint, const std::string& subscription, size_t count,
    std::chrono::milliseconds timeout, size_t* redelivered) {
  client::SubscriberOptions options;
  options.endpoint = subscribe_endpoint;
  options.subscription = subscription;
  options.start = v1::Subscribe::START_EARLIEST;
  auto sub = client::Subscriber::Open(options);
  if (!sub.ok()) {
    return sub.status();
  }
  std::map<std::pair<std::string, std::string>, v1::Event> events;
  size_t again = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (events.size() < count && std::chrono::steady_clock::now() < deadline) {
    auto batch = sub.value()->Next(std::chrono::milliseconds(200));
    if (!batch.ok()) {
      return batch.status();
    }
    if (!batch.value()) {
      continue;
    }
    for (const v1::DeliveredEvent& d : batch.value()->events) {
      auto key =
          std::make_pair(d.event().envelope().publisher_ods(), d.event().envelope().event_id());
      if (!events.emplace(key, d.event()).second) {
        ++again;
      }
    }
    if (batch.value()->scanned_to_seq > 0) {
      Status s = sub.value()->Ack(batch.value()->scanned_to_seq);
      if (!s.ok()) {
        return s;
      }
    }
  }
  if (redelivered != nullptr) {
    *redelivered = again;
  }
  return events;
}

// ---- The adapter process ----

std::string AdapterYaml(const std::string& publisher_ods, const std::vector<std::string>& sites,
                        const std::string& hub_endpoint, const std::filesystem::path& outbox,
                        const std::string& extra) {
  std::ostringstream y;
  y << "identity:\n  publisher_ods: " << publisher_ods << "\n";
  if (!sites.empty()) {
    y << "  allowed_sites: [";
    for (size_t i = 0; i < sites.size(); ++i) {
      y << (i ? ", " : "") << sites[i];
    }
    y << "]\n";
  }
  y << "hub:\n  endpoint: " << hub_endpoint << "\n  resend_after_ms: 2000\n"
    << "outbox:\n  dir: " << outbox.string() << "\n"
    << "admin:\n  listen: 127.0.0.1:0\n"
    << "logging:\n  level: info\n"
    << extra;
  return y.str();
}

Result<std::unique_ptr<AdapterProcess>> AdapterProcess::Start(const std::filesystem::path& dir,
                                                              const std::string& name,
                                                              const std::string& kind,
                                                              const std::string& target,
                                                              const std::string& config_yaml) {
  std::unique_ptr<AdapterProcess> p(new AdapterProcess(dir, name));
  const std::filesystem::path config = dir / (name + ".yaml");
  {
    std::ofstream out(config);
    out << config_yaml;
    if (!out.flush()) {
      return Status::Error("write_failed", "cannot write " + config.string());
    }
  }
  const std::filesystem::path endpoints_file = dir / name / "adapter-endpoints.json";
  std::error_code ec;
  std::filesystem::remove(endpoints_file, ec);
  const std::string flag = kind == "csv" ? "--watch" : "--listen";
  auto child = ChildProcess::Spawn(
      {BinaryPath("carehub-adapter").string(), kind, flag, target, "--config", config.string()},
      dir / (name + ".out"), dir / (name + ".log"));
  if (!child.ok()) {
    return child.status();
  }
  p->child_.emplace(std::move(child).value());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto exited = p->child_->Poll()) {
      return Status::Error("adapter_exited", "carehub-adapter exited during start-up (" +
                                                 exited->ToString() + "): " + p->ReadLog());
    }
    const std::string text = ReadFileText(endpoints_file);
    if (!text.empty()) {
      auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (!json.is_discarded() && json.value("pid", -1) == p->child_->pid()) {
        p->endpoints_.admin = json.value("admin", "");
        const std::string listen = json.value("listen", "");
        const size_t colon = listen.rfind(':');
        if (colon != std::string::npos) {
          p->endpoints_.listen_host = listen.substr(0, colon);
          p->endpoints_.listen_port = static_cast<uint16_t>(std::stoi(listen.substr(colon + 1)));
        }
        return p;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Status::Error("adapter_start_timeout",
                       "carehub-adapter did not write its endpoints file: " + p->ReadLog());
}

AdapterProcess::~AdapterProcess() = default;

Result<ExitStatus> AdapterProcess::Stop(std::chrono::milliseconds timeout) {
  if (!child_) {
    return Status::Error("not_started", "the adapter was never started");
  }
  if (auto exited = child_->Poll()) {
    return *exited;
  }
  child_->Signal(SIGTERM);
  if (auto exited = child_->Wait(timeout)) {
    return *exited;
  }
  return Status::Error("stop_timeout", "carehub-adapter did not exit after SIGTERM");
}

bool AdapterProcess::running() { return child_ && !child_->Poll() && child_->running(); }

Result<std::pair<int, std::string>> AdapterProcess::AdminGet(const std::string& path) const {
  const size_t colon = endpoints_.admin.rfind(':');
  if (colon == std::string::npos) {
    return Status::Error("no_admin", "no admin address");
  }
  httplib::Client http(endpoints_.admin.substr(0, colon),
                       std::stoi(endpoints_.admin.substr(colon + 1)));
  http.set_read_timeout(10, 0);
  auto res = http.Get(path.c_str());
  if (!res) {
    return Status::Error("http_failed", "GET " + path + ": " + httplib::to_string(res.error()));
  }
  return std::make_pair(res->status, res->body);
}

std::optional<double> AdapterProcess::Metric(const std::string& name_and_labels) const {
  auto res = AdminGet("/metrics");
  if (!res.ok()) {
    return std::nullopt;
  }
  std::istringstream in(res->second);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > name_and_labels.size() &&
        line.compare(0, name_and_labels.size(), name_and_labels) == 0 &&
        line[name_and_labels.size()] == ' ') {
      return std::stod(line.substr(name_and_labels.size() + 1));
    }
  }
  return std::nullopt;
}

// ---- A real MLLP client ----

Result<std::unique_ptr<MllpClient>> MllpClient::Connect(const std::string& host, uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return Status::Error("socket_failed", std::strerror(errno));
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    return Status::Error("connect_failed", host + ":" + std::to_string(port) + ": " + why);
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return std::unique_ptr<MllpClient>(new MllpClient(fd));
}

MllpClient::~MllpClient() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

Status MllpClient::SendRaw(const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return Status::Error("send_failed", std::strerror(errno));
    }
    sent += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Result<std::optional<std::string>> MllpClient::ReadFrame(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const size_t start = buffer_.find(kStartBlock);
    if (start != std::string::npos) {
      const size_t end = buffer_.find(std::string{kEndBlock, kCarriageReturn}, start);
      if (end != std::string::npos) {
        std::string frame = buffer_.substr(start + 1, end - start - 1);
        buffer_.erase(0, end + 2);
        return std::optional<std::string>(std::move(frame));
      }
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return std::optional<std::string>();
    }
    pollfd pfd{fd_, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno != EINTR) {
      return Status::Error("poll_failed", std::strerror(errno));
    }
    if (ready <= 0) {
      continue;
    }
    char chunk[65536];
    const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n == 0) {
      return std::optional<std::string>();
    }
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        continue;
      }
      return Status::Error("recv_failed", std::strerror(errno));
    }
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

Result<std::string> MllpClient::Send(const std::string& message,
                                     std::chrono::milliseconds timeout) {
  std::string framed;
  framed.reserve(message.size() + 3);
  framed += kStartBlock;
  framed += message;
  framed += kEndBlock;
  framed += kCarriageReturn;
  Status s = SendRaw(framed);
  if (!s.ok()) {
    return s;
  }
  auto frame = ReadFrame(timeout);
  if (!frame.ok()) {
    return frame.status();
  }
  if (!frame.value()) {
    return Status::Error("no_ack", "no ACK within " + std::to_string(timeout.count()) + " ms");
  }
  return *frame.value();
}

// ---- HL7 messages ----

std::string AdtMessage(const std::string& trigger, const std::string& control_id,
                       const std::string& facility, const std::string& visit,
                       const std::string& patient_class, const std::string& nhs,
                       const std::string& version) {
  const std::string structure = trigger == "A40" ? "ADT_A39" : "ADT_A01";
  std::string m = "MSH|^~\\&|PAS|" + facility + "|CAREHUB|RXK|20240315103000||ADT^" + trigger +
                  "^" + structure + "|" + control_id + "|P|" + version + "\r";
  m += Seg("EVN", {{1, trigger}, {2, "20240315103000"}, {6, "20240315102500"}});
  m += Seg("PID", {{1, "1"},
                   {3, nhs + "^^^NHS^NH~RXK1234567^^^RXK^MR"},
                   {5, "SMITH^JOHN^ALAN^^MR^^L"},
                   {7, "19800101"},
                   {8, "M"},
                   {11, "1 HIGH STREET^FLAT 2^LEEDS^WEST YORKSHIRE^LS14AP^GBR^H"}});
  m += Seg("PD1", {{3, "LEEDS GP^^^^^^^^^B86001"}});
  if (trigger == "A40") {
    m += Seg("MRG", {{1, std::string(kOtherNhsNumber) + "^^^NHS^NH~RXK7654321^^^RXK^MR"}});
    return m;
  }
  std::map<int, std::string> pv1 = {{1, "1"},    {2, patient_class},    {3, "WARD12^B3^4^RXK01"},
                                    {4, "E"},    {10, "300"},           {14, "19"},
                                    {19, visit}, {44, "20240315090000"}};
  if (trigger == "A03") {
    pv1[36] = "1";
    pv1[37] = "19";
    pv1[45] = "20240318140000";
  }
  m += Seg("PV1", pv1);
  m += Seg("DG1", {{1, "1"}, {3, "I21.9^Acute myocardial infarction^I10"}});
  return m;
}

ParsedAck ParseAck(const std::string& ack) {
  ParsedAck out;
  out.text = ack;
  for (const std::string& segment : Split(ack, '\r')) {
    if (segment.rfind("MSA|", 0) == 0) {
      auto fields = Split(segment, '|');
      out.code = fields.size() > 1 ? fields[1] : "";
      out.control_id = fields.size() > 2 ? fields[2] : "";
    }
  }
  return out;
}

// ---- HTTP ----

Result<std::pair<int, std::string>> HttpSend(const std::string& method, const std::string& host,
                                             uint16_t port, const std::string& path,
                                             const std::string& body,
                                             const std::string& content_type,
                                             std::chrono::seconds timeout) {
  httplib::Client http(host, port);
  http.set_read_timeout(timeout.count(), 0);
  http.set_write_timeout(timeout.count(), 0);
  httplib::Result res = method == "PUT" ? http.Put(path.c_str(), body, content_type.c_str())
                                        : http.Post(path.c_str(), body, content_type.c_str());
  if (!res) {
    return Status::Error("http_failed",
                         method + " " + path + ": " + httplib::to_string(res.error()));
  }
  return std::make_pair(res->status, res->body);
}

Result<uint16_t> PickFreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return Status::Error("socket_failed", std::strerror(errno));
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    return Status::Error("bind_failed", why);
  }
  ::close(fd);
  return static_cast<uint16_t>(ntohs(addr.sin_port));
}

int64_t Seconds(const google::protobuf::Timestamp& t) { return t.seconds(); }

int64_t UtcSeconds(int year, int month, int day, int hour, int minute, int second) {
  using namespace std::chrono;
  const sys_days days =
      year_month_day(std::chrono::year(year), std::chrono::month(month), std::chrono::day(day));
  return duration_cast<std::chrono::seconds>(days.time_since_epoch()).count() + hour * 3600 +
         minute * 60 + second;
}

}  // namespace carehub::itest
