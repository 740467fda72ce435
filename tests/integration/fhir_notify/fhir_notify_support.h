#pragma once
// Support for the carehub-fhir-notify integration tests (issue 18): a real HTTPS receiver
// (cpp-httplib SSLServer with a throwaway certificate made by `openssl req` at test time, bearer
// token or mutual TLS), the real carehub-fhir-notify binary as a child process, the FHIR R4 JSON
// schema check (validate_fhir.py over HL7's fhir.schema.json) and readers of what arrived.
//
// FhirReceiver's Bodies()/counters are thread-safe (httplib handlers record from their threads);
// everything else belongs to the test thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "carehub/core/status.h"
#include "harness/child_process.h"

namespace httplib {
class SSLServer;
}  // namespace httplib

namespace carehub::itest {

// A self-signed certificate for 127.0.0.1 (CN and subjectAltName IP), made with `openssl req`.
struct TestCert {
  std::filesystem::path cert;
  std::filesystem::path key;
};
Result<TestCert> MakeTestCert(const std::filesystem::path& dir, const std::string& name);

struct ReceiverOptions {
  std::string bearer_token;  // required on every POST when set (401 otherwise)
  // Mutual TLS: the client certificate (self-signed) the receiver trusts; empty: no client cert.
  std::filesystem::path client_ca;
  // False (the benchmark): bodies are counted, not kept.
  bool keep_bodies = true;
};

class FhirReceiver {
 public:
  static Result<std::unique_ptr<FhirReceiver>> Start(const std::filesystem::path& dir,
                                                     ReceiverOptions options);
  ~FhirReceiver();
  FhirReceiver(const FhirReceiver&) = delete;
  FhirReceiver& operator=(const FhirReceiver&) = delete;

  // Closes the listening socket: senders get "connection refused" until Resume().
  void Down();
  // Listens again on the same port.
  Status Resume();

  uint16_t port() const { return port_; }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_) + "/notify"; }
  const TestCert& cert() const { return cert_; }
  std::vector<std::string> Bodies() const;
  size_t unauthorised() const { return unauthorised_.load(); }
  // Bodies received and notification-events in them (counted by "event-number" parts).
  size_t bodies_received() const { return bodies_received_.load(); }
  size_t events_received() const { return events_received_.load(); }
  size_t bytes_received() const { return bytes_received_.load(); }
  // Entries after the status entry (resources, or resource ids for id-only), by "fullUrl" count.
  size_t resources_received() const { return resources_received_.load(); }

 private:
  FhirReceiver(std::filesystem::path dir, ReceiverOptions options, TestCert cert);
  Status Listen(int port);

  std::filesystem::path dir_;
  ReceiverOptions options_;
  TestCert cert_;
  std::unique_ptr<httplib::SSLServer> server_;
  std::thread thread_;
  uint16_t port_ = 0;
  mutable std::mutex mu_;
  std::vector<std::string> bodies_;
  std::atomic<size_t> unauthorised_{0};
  std::atomic<size_t> bodies_received_{0};
  std::atomic<size_t> events_received_{0};
  std::atomic<size_t> bytes_received_{0};
  std::atomic<size_t> resources_received_{0};
};

// The real carehub-fhir-notify with `config_yaml` written to <dir>/notify.yaml; waits for
// <state_dir>/notify-endpoints.json carrying its pid.
class NotifyProcess {
 public:
  static Result<std::unique_ptr<NotifyProcess>> Start(const std::filesystem::path& dir,
                                                      const std::string& config_yaml,
                                                      const std::filesystem::path& state_dir);
  ~NotifyProcess();
  Status Restart();
  void Kill();
  Result<ExitStatus> Stop(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  const std::string& admin() const { return admin_; }
  std::string ReadLog() const { return ReadFileText(dir_ / "notify.log"); }
  // GET http://admin<path>: status and parsed JSON body (null when not JSON).
  Result<std::pair<int, nlohmann::json>> Get(const std::string& path) const;
  // The status of subscription `fhir_id` per /api/v1/status ("" when unknown or no answer).
  std::string SubscriptionStatus(const std::string& fhir_id) const;

 private:
  NotifyProcess(std::filesystem::path dir, std::filesystem::path state_dir)
      : dir_(std::move(dir)), state_dir_(std::move(state_dir)) {}
  Status Launch();
  std::filesystem::path dir_;
  std::filesystem::path state_dir_;
  std::optional<ChildProcess> child_;
  std::string admin_;
};

// One notification-event as received.
struct ReceivedEvent {
  uint64_t number = 0;
  size_t bundle = 0;  // index of the body it came in
  std::string focus;  // focus reference, version-specific ("" for empty payload / withheld number)
  nlohmann::json focus_resource;  // the focus entry's resource (full-resource), else null
  std::string event_id;           // from the focus resource's carehub event extension
  std::string event_type;         // from the routing-fact extension, when present
};

struct ReceivedNotification {
  std::string type;    // handshake, heartbeat, event-notification ...
  std::string status;  // active, error ...
  uint64_t events_since_start = 0;
  std::vector<ReceivedEvent> events;
  nlohmann::json bundle;
};

// Parses each body; an error names the first body that is not a Backport notification.
// `first_index` is the index of bodies[0] among all bodies received (ReceivedEvent::bundle).
Result<std::vector<ReceivedNotification>> ParseNotifications(const std::vector<std::string>& bodies,
                                                             size_t first_index = 0);
// The events of all event-notifications, in arrival order.
std::vector<ReceivedEvent> AllEvents(const std::vector<ReceivedNotification>& notifications);

// Writes each body to <dir>/NNNNN.json and runs validate_fhir.py over them with the FHIR R4 JSON
// schema (CAREHUB_FHIR_SCHEMA). Error (with the validator's report) when any is invalid or the
// schema or validator is missing: the check fails, it never skips.
Status ValidateAgainstFhirSchema(const std::vector<std::string>& bodies,
                                 const std::filesystem::path& dir);

// The value of the carehub event extension's `part` (e.g. "eventId") on a resource; "" if absent.
std::string CarehubEventPart(const nlohmann::json& resource, const std::string& part);

}  // namespace carehub::itest
