#include "fhir_notify_support.h"

#include <httplib.h>
#include <signal.h>

#include <fstream>
#include <map>

#include "harness/hub_process.h"

namespace carehub::itest {

using nlohmann::json;
using Steady = std::chrono::steady_clock;

Result<TestCert> MakeTestCert(const std::filesystem::path& dir, const std::string& name) {
  TestCert c{dir / (name + "-cert.pem"), dir / (name + "-key.pem")};
  auto r = RunCommand({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                       "-keyout", c.key.string(), "-out", c.cert.string(), "-days", "2", "-subj",
                       "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"},
                      dir, std::chrono::seconds(60));
  if (!r.ok()) {
    return r.status();
  }
  if (!r->status.Exited(0)) {
    return Status::Error("openssl", "openssl req failed: " + r->err);
  }
  return c;
}

Result<std::unique_ptr<FhirReceiver>> FhirReceiver::Start(const std::filesystem::path& dir,
                                                          ReceiverOptions options) {
  auto cert = MakeTestCert(dir, "receiver");
  if (!cert.ok()) {
    return cert.status();
  }
  std::unique_ptr<FhirReceiver> r(new FhirReceiver(dir, std::move(options), cert.value()));
  Status s = r->Listen(0);
  if (!s.ok()) {
    return s;
  }
  return r;
}

FhirReceiver::FhirReceiver(std::filesystem::path dir, ReceiverOptions options, TestCert cert)
    : dir_(std::move(dir)), options_(std::move(options)), cert_(std::move(cert)) {}

FhirReceiver::~FhirReceiver() { Down(); }

Status FhirReceiver::Listen(int port) {
  const std::string client_ca = options_.client_ca.string();
  server_ = std::make_unique<httplib::SSLServer>(cert_.cert.c_str(), cert_.key.c_str(),
                                                 client_ca.empty() ? nullptr : client_ca.c_str());
  if (!server_->is_valid()) {
    return Status::Error("receiver", "the SSLServer refused its certificate");
  }
  server_->Post(".*", [this](const httplib::Request& req, httplib::Response& res) {
    if (!options_.bearer_token.empty() &&
        req.get_header_value("Authorization") != "Bearer " + options_.bearer_token) {
      ++unauthorised_;
      res.status = 401;
      return;
    }
    size_t events = 0;
    for (size_t at = req.body.find("\"event-number\""); at != std::string::npos;
         at = req.body.find("\"event-number\"", at + 1)) {
      ++events;
    }
    size_t entries = 0;
    for (size_t at = req.body.find("\"fullUrl\""); at != std::string::npos;
         at = req.body.find("\"fullUrl\"", at + 1)) {
      ++entries;
    }
    resources_received_ += entries > 0 ? entries - 1 : 0;
    if (options_.keep_bodies) {
      std::lock_guard<std::mutex> lock(mu_);
      bodies_.push_back(req.body);
    }
    bytes_received_ += req.body.size();
    events_received_ += events;
    ++bodies_received_;
    res.status = 200;
  });
  int bound = port == 0 ? server_->bind_to_any_port("127.0.0.1")
                        : (server_->bind_to_port("127.0.0.1", port) ? port : -1);
  if (bound <= 0) {
    return Status::Error("receiver", "cannot bind 127.0.0.1:" + std::to_string(port));
  }
  port_ = static_cast<uint16_t>(bound);
  httplib::SSLServer* raw = server_.get();
  thread_ = std::thread([raw] { raw->listen_after_bind(); });
  return Status::Ok();
}

void FhirReceiver::Down() {
  if (server_) {
    server_->stop();
  }
  if (thread_.joinable()) {
    thread_.join();
  }
  server_.reset();
}

Status FhirReceiver::Resume() {
  // The port was ours a moment ago; bind retries briefly in case the kernel still holds it.
  for (int attempt = 0; attempt < 50; ++attempt) {
    Status s = Listen(port_);
    if (s.ok()) {
      return s;
    }
    server_.reset();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Status::Error("receiver", "cannot listen again on port " + std::to_string(port_));
}

std::vector<std::string> FhirReceiver::Bodies() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bodies_;
}

// ---- NotifyProcess ----

Result<std::unique_ptr<NotifyProcess>> NotifyProcess::Start(
    const std::filesystem::path& dir, const std::string& config_yaml,
    const std::filesystem::path& state_dir) {
  std::ofstream(dir / "notify.yaml") << config_yaml;
  std::unique_ptr<NotifyProcess> p(new NotifyProcess(dir, state_dir));
  Status s = p->Launch();
  if (!s.ok()) {
    return s;
  }
  return p;
}

NotifyProcess::~NotifyProcess() = default;

Status NotifyProcess::Launch() {
  const auto endpoints = state_dir_ / "notify-endpoints.json";
  std::error_code ec;
  std::filesystem::remove(endpoints, ec);
  auto child = ChildProcess::Spawn(
      {BinaryPath("carehub-fhir-notify").string(), "--config", (dir_ / "notify.yaml").string()},
      dir_ / "notify.out", dir_ / "notify.log");
  if (!child.ok()) {
    return child.status();
  }
  child_.emplace(std::move(child).value());
  const auto deadline = Steady::now() + Scaled(std::chrono::seconds(20));
  while (Steady::now() < deadline) {
    if (auto ended = child_->Poll()) {
      return Status::Error("notify_exited",
                           "carehub-fhir-notify exited (" + ended->ToString() + "): " + ReadLog());
    }
    std::ifstream in(endpoints);
    if (in) {
      json j = json::parse(in, nullptr, false);
      if (j.is_object() && j.value("pid", -1) == child_->pid()) {
        admin_ = j.value("admin", "");
        return Status::Ok();
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Status::Error("timeout", "carehub-fhir-notify did not start: " + ReadLog());
}

Status NotifyProcess::Restart() { return Launch(); }

void NotifyProcess::Kill() {
  if (child_ && child_->running()) {
    child_->Signal(SIGKILL);
    (void)child_->Wait(std::chrono::seconds(10));
  }
}

Result<ExitStatus> NotifyProcess::Stop(std::chrono::milliseconds timeout) {
  if (!child_ || !child_->running()) {
    return Status::Error("not_running", "carehub-fhir-notify is not running");
  }
  child_->Signal(SIGTERM);
  auto ended = child_->Wait(timeout);
  if (!ended) {
    return Status::Error("timeout", "carehub-fhir-notify did not stop after SIGTERM");
  }
  return *ended;
}

Result<std::pair<int, json>> NotifyProcess::Get(const std::string& path) const {
  httplib::Client client("http://" + admin_);
  client.set_read_timeout(90, 0);
  auto res = client.Get(path.c_str());
  if (!res) {
    return Status::Error("http", "GET " + path + ": " + httplib::to_string(res.error()));
  }
  return std::pair<int, json>(res->status, json::parse(res->body, nullptr, false));
}

std::string NotifyProcess::SubscriptionStatus(const std::string& fhir_id) const {
  auto r = Get("/api/v1/status");
  if (!r.ok() || !r->second.is_object()) {
    return "";
  }
  for (const auto& s : r->second["subscriptions"]) {
    if (s.value("fhir_id", "") == fhir_id) {
      return s.value("status", "");
    }
  }
  return "";
}

// ---- Reading notifications ----

std::string CarehubEventPart(const json& resource, const std::string& part) {
  if (!resource.is_object() || !resource.contains("extension")) {
    return "";
  }
  for (const auto& ext : resource["extension"]) {
    if (ext.value("url", "") !=
        "https://carehub.nhs.uk/StructureDefinition/Extension-CarehubEvent") {
      continue;
    }
    for (const auto& p : ext["extension"]) {
      if (p.value("url", "") == part) {
        for (const char* key : {"valueString", "valueCode", "valueInstant"}) {
          if (p.contains(key)) {
            return p[key].get<std::string>();
          }
        }
      }
    }
  }
  return "";
}

Result<std::vector<ReceivedNotification>> ParseNotifications(const std::vector<std::string>& bodies,
                                                             size_t first_index) {
  std::vector<ReceivedNotification> out;
  for (size_t i = 0; i < bodies.size(); ++i) {
    auto bad = [&](const std::string& what) {
      return Status::Error("not_a_notification", "body " + std::to_string(first_index + i) + ": " +
                                                     what + ": " + bodies[i].substr(0, 300));
    };
    json b = json::parse(bodies[i], nullptr, false);
    if (!b.is_object() || b.value("resourceType", "") != "Bundle" || !b.contains("entry") ||
        b["entry"].empty()) {
      return bad("not a Bundle with entries");
    }
    const json& params = b["entry"][0]["resource"];
    if (params.value("resourceType", "") != "Parameters") {
      return bad("first entry is not Parameters");
    }
    ReceivedNotification n;
    n.bundle = b;
    // Focus references are version-specific: fullUrl + "/_history/" + meta.versionId.
    std::map<std::string, json> by_url;
    for (const auto& e : b["entry"]) {
      if (e.contains("resource") && e["resource"].contains("meta") &&
          e["resource"]["meta"].contains("versionId")) {
        by_url[e.value("fullUrl", "") + "/_history/" +
               e["resource"]["meta"]["versionId"].get<std::string>()] = e["resource"];
      }
    }
    for (const auto& p : params["parameter"]) {
      const std::string name = p.value("name", "");
      if (name == "type") {
        n.type = p.value("valueCode", "");
      } else if (name == "status") {
        n.status = p.value("valueCode", "");
      } else if (name == "events-since-subscription-start") {
        n.events_since_start = std::stoull(p.value("valueString", "0"));
      } else if (name == "notification-event") {
        ReceivedEvent ev;
        ev.bundle = first_index + i;
        for (const auto& part : p["part"]) {
          const std::string pn = part.value("name", "");
          if (pn == "event-number") {
            ev.number = std::stoull(part.value("valueString", "0"));
          } else if (pn == "focus") {
            ev.focus = part["valueReference"].value("reference", "");
          }
        }
        if (p.contains("extension")) {
          for (const auto& ext : p["extension"]) {
            if (ext.value("url", "").ends_with("Extension-RoutingEventType")) {
              ev.event_type = ext.value("valueCode", "");
            }
          }
        }
        if (!ev.focus.empty() && by_url.count(ev.focus)) {
          ev.focus_resource = by_url[ev.focus];
          ev.event_id = CarehubEventPart(ev.focus_resource, "eventId");
        }
        if (ev.number == 0) {
          return bad("a notification-event without event-number");
        }
        n.events.push_back(std::move(ev));
      }
    }
    out.push_back(std::move(n));
  }
  return out;
}

std::vector<ReceivedEvent> AllEvents(const std::vector<ReceivedNotification>& notifications) {
  std::vector<ReceivedEvent> all;
  for (const auto& n : notifications) {
    if (n.type == "event-notification") {
      all.insert(all.end(), n.events.begin(), n.events.end());
    }
  }
  return all;
}

Status ValidateAgainstFhirSchema(const std::vector<std::string>& bodies,
                                 const std::filesystem::path& dir) {
  const std::filesystem::path schema = CAREHUB_FHIR_SCHEMA;
  if (!std::filesystem::exists(schema)) {
    return Status::Error("no_schema", "the FHIR R4 JSON schema is not at " + schema.string() +
                                          ": the vendored copy in tests/data/fhir-r4/ is missing");
  }
  std::filesystem::create_directories(dir);
  std::vector<std::string> argv = {
      "/usr/bin/python3",
      std::string(CAREHUB_SOURCE_DIR) + "/tests/integration/fhir_notify/validate_fhir.py",
      schema.string()};
  for (size_t i = 0; i < bodies.size(); ++i) {
    char name[32];
    std::snprintf(name, sizeof(name), "%05zu.json", i);
    std::ofstream(dir / name) << bodies[i];
    argv.push_back((dir / name).string());
  }
  auto r = RunCommand(argv, dir, Scaled(std::chrono::minutes(5)));
  if (!r.ok()) {
    return r.status();
  }
  if (!r->status.Exited(0)) {
    return Status::Error("invalid_fhir", r->out.substr(0, 4000) + r->err.substr(0, 2000));
  }
  return Status::Ok();
}

}  // namespace carehub::itest
