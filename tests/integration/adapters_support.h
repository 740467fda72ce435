#pragma once
// Support for the adapter integration tests: the real `carehub-adapter` binary as a child process,
// a real MLLP client, HL7 ADT builders, the direct-care agreements the tests subscribe under, and a
// reader that collects events through carehub::client::Subscriber.
//
// Not thread-safe unless a method says so: each test thread owns its own MllpClient.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "carehub/core/status.h"
#include "carehub/v1/event.pb.h"
#include "harness/child_process.h"
#include "harness/hub_process.h"

namespace carehub::itest {

// ---- Hub with a direct-care subscription ----

// The subscription (and subscriber) the tests read through: direct care, identifiable fields,
// every source and event type.
inline constexpr const char* kDirectCareSubscription = "itest-direct-care";

// Writes agreements.yaml into `dir` and returns the YAML to merge into the hub config.
Result<std::string> DirectCareHubYaml(const std::filesystem::path& dir);

// Collects events delivered to `subscription` until `count` distinct (publisher, event id) pairs
// have arrived or `timeout` passes. Acknowledges what it read. Redeliveries of a pair are counted
// in `redelivered` (optional).
Result<std::map<std::pair<std::string, std::string>, v1::Event>> ReadEvents(
    const std::string& subscribe_endpoint, size_t count, std::chrono::milliseconds timeout,
    size_t* redelivered = nullptr);
// The same from any subscription (e.g. a secondary-use one).
Result<std::map<std::pair<std::string, std::string>, v1::Event>> ReadEventsFrom(
    const std::string& subscribe_endpoint, const std::string& subscription, size_t count,
    std::chrono::milliseconds timeout, size_t* redelivered = nullptr);

// ---- The adapter process ----

struct AdapterEndpoints {
  std::string listen_host;
  uint16_t listen_port = 0;
  std::string admin;  // HOST:PORT
};

class AdapterProcess {
 public:
  // Writes `config_yaml` to <dir>/<name>.yaml (outbox under <dir>/<name>/outbox) and runs
  // carehub-adapter <kind> --listen/--watch <target> --config that file; waits for the
  // adapter-endpoints.json carrying its pid. `kind` is "hl7", "fhir" or "csv".
  static Result<std::unique_ptr<AdapterProcess>> Start(const std::filesystem::path& dir,
                                                       const std::string& name,
                                                       const std::string& kind,
                                                       const std::string& target,
                                                       const std::string& config_yaml);
  ~AdapterProcess();
  AdapterProcess(const AdapterProcess&) = delete;
  AdapterProcess& operator=(const AdapterProcess&) = delete;

  const AdapterEndpoints& endpoints() const { return endpoints_; }
  std::filesystem::path outbox_dir() const { return dir_ / name_ / "outbox"; }
  std::string ReadLog() const { return ReadFileText(dir_ / (name_ + ".log")); }
  // SIGTERM and wait.
  Result<ExitStatus> Stop(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  bool running();

  // GET http://admin/<path>: status and body; error when the request fails.
  Result<std::pair<int, std::string>> AdminGet(const std::string& path) const;
  // The value of a metric line "<name_and_labels> <value>" from /metrics; empty if absent.
  std::optional<double> Metric(const std::string& name_and_labels) const;

 private:
  AdapterProcess(std::filesystem::path dir, std::string name)
      : dir_(std::move(dir)), name_(std::move(name)) {}

  std::filesystem::path dir_;
  std::string name_;
  std::optional<ChildProcess> child_;
  AdapterEndpoints endpoints_;
};

// A minimal adapter config for tests (plain transport to the hub's loopback endpoint).
std::string AdapterYaml(const std::string& publisher_ods, const std::vector<std::string>& sites,
                        const std::string& hub_endpoint, const std::filesystem::path& outbox,
                        const std::string& extra = "");

// ---- A real MLLP client ----

class MllpClient {
 public:
  static Result<std::unique_ptr<MllpClient>> Connect(const std::string& host, uint16_t port);
  ~MllpClient();
  MllpClient(const MllpClient&) = delete;
  MllpClient& operator=(const MllpClient&) = delete;

  // Sends bytes as they are (no framing).
  Status SendRaw(const std::string& bytes);
  // Frames `message` (0x0B ... 0x1C 0x0D), sends it and waits for the framed answer.
  Result<std::string> Send(const std::string& message, std::chrono::milliseconds timeout);
  // Waits for the next framed answer; empty after `timeout` or when the peer closed.
  Result<std::optional<std::string>> ReadFrame(std::chrono::milliseconds timeout);

 private:
  explicit MllpClient(int fd) : fd_(fd) {}
  int fd_ = -1;
  std::string buffer_;
};

// ---- HL7 messages ----

inline constexpr const char* kNhsNumber = "9434765919";
inline constexpr const char* kOtherNhsNumber = "9999999484";
inline constexpr const char* kBadNhsNumber = "9434765918";  // check digit wrong

// An ADT message for `trigger` from facility `facility` with MSH-10 `control_id`, for visit
// `visit`, patient class `patient_class` (PV1-2). Times: MSH-7 20240315103000, EVN-6
// 20240315102500 (UK civil time, GMT in March); A03 carries a discharge time.
std::string AdtMessage(const std::string& trigger, const std::string& control_id,
                       const std::string& facility = "RXK01", const std::string& visit = "V1",
                       const std::string& patient_class = "I", const std::string& nhs = kNhsNumber,
                       const std::string& version = "2.5.1");

// Fields of an ACK: MSA-1 (code), MSA-2 (control id), and the whole text for reason checks.
struct ParsedAck {
  std::string code;
  std::string control_id;
  std::string text;
};
ParsedAck ParseAck(const std::string& ack);

// ---- HTTP ----

// POST/PUT a body to http://host:port/path; status and body, or an error when no answer came.
Result<std::pair<int, std::string>> HttpSend(
    const std::string& method, const std::string& host, uint16_t port, const std::string& path,
    const std::string& body, const std::string& content_type,
    std::chrono::seconds timeout = std::chrono::seconds(30));

// A TCP port on 127.0.0.1 that was free a moment ago (for a hub that must come back on the same
// port after a restart).
Result<uint16_t> PickFreePort();

// Seconds since the Unix epoch of a protobuf timestamp.
int64_t Seconds(const google::protobuf::Timestamp& t);
// Unix seconds of a UTC civil time.
int64_t UtcSeconds(int year, int month, int day, int hour, int minute, int second);

}  // namespace carehub::itest
