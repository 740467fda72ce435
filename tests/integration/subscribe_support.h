#pragma once
// Shared pieces of the subscription integration tests (DESIGN §6): agreement files written by the
// test, a hub started with them, publishing with every event accepted, reading a feed through the
// client library, running `carehub-subscribe`, and the admin HTTP API.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "carehub/client/subscriber.h"
#include "carehub/core/status.h"
#include "carehub/v1/wire.pb.h"
#include "harness/child_process.h"
#include "harness/hub_process.h"

namespace carehub::itest {

// 64 hex digits (32 bytes): a fixed test secret, so pseudonyms are the same on every run.
inline constexpr const char* kTestPseudonymKey =
    "9f1c2b3a4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8\n";

// Writes `text` to `path` through a temp file and rename, so a hub reloading at that moment reads
// either the old file or the new one, never half of one.
Status WriteFileAtomically(const std::filesystem::path& path, const std::string& text);

// Writes agreements.yaml (with `agreements_yaml` as its whole content), pseudonym.key and
// national-opt-out.txt (one number per line) into `dir`; returns the agreements file's path.
// The YAML refers to the other two by their relative names.
Result<std::filesystem::path> WritePolicyFiles(const std::filesystem::path& dir,
                                               const std::string& agreements_yaml,
                                               const std::vector<std::string>& opt_out = {});

// The `policy:` and `extra` config overrides for a hub reading `agreements`.
HubProcessOptions HubWithAgreements(const std::string& tag, const std::filesystem::path& agreements,
                                    const std::string& extra_yaml = "",
                                    const std::string& durability = "fsync");

// Publishes `events` (batches of 500, 8 in flight) and returns each event's hub_seq in input
// order; an error unless every event is ACCEPTED.
Result<std::vector<uint64_t>> PublishAccepted(const std::string& ingest_endpoint,
                                              const std::vector<v1::Event>& events);

// Options for reading a feed with the client library.
struct ReadFeedOptions {
  v1::Subscribe::Start start = v1::Subscribe::START_EARLIEST;
  uint64_t start_seq = 0;
  uint32_t window = 10'000;
  bool ack = true;
  // Read until a batch reports scanned_to_seq >= until_seq ...
  uint64_t until_seq = 0;
  // ... or fail after this long.
  std::chrono::milliseconds timeout{60'000};
};

struct FeedRead {
  std::vector<v1::DeliveredEvent> events;
  size_t batches = 0;
  // Batches that carried events, with their size and scanned_to_seq.
  std::vector<std::pair<size_t, uint64_t>> event_batches;
  std::optional<v1::Notice> notice;
  v1::Subscribed subscribed;
  double seconds = 0;
};

// Opens `subscription` and reads it until the options' until_seq has been examined.
Result<FeedRead> ReadFeed(const std::string& endpoint, const std::string& subscription,
                          const ReadFeedOptions& options);
// The two halves of ReadFeed, for a test that opens feeds before it publishes: Open subscribes
// with the options' start and window...
Result<std::unique_ptr<client::Subscriber>> OpenFeed(const std::string& endpoint,
                                                     const std::string& subscription,
                                                     const ReadFeedOptions& options);
// ...and ReadOpenFeed reads until the options' until_seq has been examined, or fails once their
// timeout has passed since `started`.
Result<FeedRead> ReadOpenFeed(client::Subscriber& sub, const std::string& subscription,
                              const ReadFeedOptions& options,
                              std::chrono::steady_clock::time_point started);

// Runs carehub-subscribe with `args` (after --endpoint) to completion.
Result<CommandResult> RunSubscribeTool(const std::string& endpoint,
                                       const std::vector<std::string>& args,
                                       const std::filesystem::path& work_dir,
                                       std::chrono::milliseconds timeout);

// Every line of an NDJSON file written by carehub-subscribe, parsed; a line that does not parse
// is an error naming its number.
Result<std::vector<v1::DeliveredEvent>> ReadNdjson(const std::filesystem::path& path);

// The admin API over HTTP at `address` ("127.0.0.1:PORT").
struct HttpReply {
  int status = 0;
  nlohmann::json body;
};
Result<HttpReply> AdminGet(const std::string& address, const std::string& path);
Result<HttpReply> AdminPost(const std::string& address, const std::string& path);
// POST `path` with a JSON `body`; the answer as text (CSV and HTML reports too).
struct HttpText {
  int status = 0;
  std::string text;
  std::string content_type;
};
Result<HttpText> AdminPostText(const std::string& address, const std::string& path,
                               const std::string& body);

// Every audit record (GET /api/v1/audit) as JSON items.
Result<std::vector<nlohmann::json>> AuditRecords(const std::string& address);

// Waits (bounded by `timeout`) until `pred` holds, polling every 20 ms; returns whether it held.
bool WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

// The hub_seqs of a list of delivered events, in order.
std::vector<uint64_t> Seqs(const std::vector<v1::DeliveredEvent>& events);

}  // namespace carehub::itest
