#include "subscribe_support.h"

#include <google/protobuf/util/json_util.h>
#include <httplib.h>

#include <fstream>
#include <thread>

#include "harness/raw_publisher.h"

namespace carehub::itest {

using Steady = std::chrono::steady_clock;

Status WriteFileAtomically(const std::filesystem::path& path, const std::string& text) {
  auto tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    out.flush();
    if (!out) {
      return Status::Error("write_failed", "cannot write " + tmp.string());
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    return Status::Error("write_failed", "cannot rename to " + path.string() + ": " + ec.message());
  }
  return Status::Ok();
}

Result<std::filesystem::path> WritePolicyFiles(const std::filesystem::path& dir,
                                               const std::string& agreements_yaml,
                                               const std::vector<std::string>& opt_out) {
  std::string opt_out_text = "# test opt-out list: synthetic numbers the test publishes\n";
  for (const auto& n : opt_out) {
    opt_out_text += n + "\n";
  }
  auto path = dir / "agreements.yaml";
  for (const auto& [file, text] :
       {std::pair{dir / "pseudonym.key", std::string(kTestPseudonymKey)},
        std::pair{dir / "national-opt-out.txt", opt_out_text}, std::pair{path, agreements_yaml}}) {
    Status s = WriteFileAtomically(file, text);
    if (!s.ok()) {
      return s;
    }
  }
  return path;
}

HubProcessOptions HubWithAgreements(const std::string& tag, const std::filesystem::path& agreements,
                                    const std::string& extra_yaml, const std::string& durability) {
  std::string yaml = "policy:\n  agreements: " + agreements.string() + "\n";
  auto merged = MergeYaml(yaml, extra_yaml.empty() ? "{}" : extra_yaml);
  return HubOptions(tag, merged.ok() ? merged.value() : yaml + extra_yaml, durability);
}

Result<std::vector<uint64_t>> PublishAccepted(const std::string& ingest_endpoint,
                                              const std::vector<v1::Event>& events) {
  auto pub = RawPublisher::Connect(ingest_endpoint);
  if (!pub.ok()) {
    return pub.status();
  }
  auto results = pub.value()->PublishAll(events, 500, 8, std::chrono::seconds(120));
  if (!results.ok()) {
    return results.status();
  }
  std::vector<uint64_t> seqs;
  seqs.reserve(events.size());
  for (size_t i = 0; i < results->size(); ++i) {
    const auto& r = (*results)[i];
    if (r.status() != v1::EventResult::ACCEPTED) {
      return Status::Error("not_accepted", "event " + events[i].envelope().event_id() + ": " +
                                               v1::EventResult::Status_Name(r.status()) + " " +
                                               r.reason() + " " + r.message());
    }
    seqs.push_back(r.hub_seq());
  }
  return seqs;
}

Result<FeedRead> ReadFeed(const std::string& endpoint, const std::string& subscription,
                          const ReadFeedOptions& options) {
  const auto started = Steady::now();
  auto sub = OpenFeed(endpoint, subscription, options);
  if (!sub.ok()) {
    return sub.status();
  }
  return ReadOpenFeed(*sub.value(), subscription, options, started);
}

Result<std::unique_ptr<client::Subscriber>> OpenFeed(const std::string& endpoint,
                                                     const std::string& subscription,
                                                     const ReadFeedOptions& options) {
  client::SubscriberOptions so;
  so.endpoint = endpoint;
  so.subscription = subscription;
  so.start = options.start;
  so.start_seq = options.start_seq;
  so.window = options.window;
  return client::Subscriber::Open(so);
}

Result<FeedRead> ReadOpenFeed(client::Subscriber& sub, const std::string& subscription,
                              const ReadFeedOptions& options, Steady::time_point started) {
  FeedRead read;
  read.subscribed = sub.subscribed();
  auto deadline = started + options.timeout;
  uint64_t scanned = 0;
  while (scanned < options.until_seq) {
    if (Steady::now() >= deadline) {
      return Status::Error("timeout", subscription + ": examined up to hub_seq " +
                                          std::to_string(scanned) + " of " +
                                          std::to_string(options.until_seq) + " after " +
                                          std::to_string(options.timeout.count()) + " ms, with " +
                                          std::to_string(read.events.size()) + " events");
    }
    auto batch = sub.Next(std::chrono::milliseconds(200));
    if (!batch.ok()) {
      return batch.status();
    }
    if (!batch.value()) {
      continue;
    }
    ++read.batches;
    scanned = std::max(scanned, batch.value()->scanned_to_seq);
    if (!batch.value()->events.empty()) {
      read.event_batches.emplace_back(batch.value()->events.size(), batch.value()->scanned_to_seq);
    }
    for (auto& e : batch.value()->events) {
      read.events.push_back(std::move(e));
    }
    if (options.ack) {
      (void)sub.Ack(batch.value()->scanned_to_seq);
    }
  }
  // Let the last Ack leave before the socket closes (it has no linger).
  (void)sub.Next(std::chrono::milliseconds(50));
  read.notice = sub.notice();
  read.seconds = std::chrono::duration<double>(Steady::now() - started).count();
  return read;
}

Result<CommandResult> RunSubscribeTool(const std::string& endpoint,
                                       const std::vector<std::string>& args,
                                       const std::filesystem::path& work_dir,
                                       std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {BinaryPath("carehub-subscribe").string(), "--endpoint",
                                   endpoint};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, work_dir, timeout);
}

Result<std::vector<v1::DeliveredEvent>> ReadNdjson(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) {
    return Status::Error("unreadable", "cannot read " + path.string());
  }
  std::vector<v1::DeliveredEvent> out;
  std::string line;
  size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    v1::DeliveredEvent d;
    auto s = google::protobuf::util::JsonStringToMessage(line, &d);
    if (!s.ok()) {
      return Status::Error("bad_line", path.string() + ":" + std::to_string(number) + ": " +
                                           s.ToString() + ": " + line.substr(0, 200));
    }
    out.push_back(std::move(d));
  }
  return out;
}

namespace {

// A client for the hub's admin address "host:port".
Result<std::unique_ptr<httplib::Client>> AdminClientFor(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) {
    return Status::Error("bad_address", "admin address without a port: " + address);
  }
  auto cli = std::make_unique<httplib::Client>(address.substr(0, colon),
                                               std::stoi(address.substr(colon + 1)));
  cli->set_connection_timeout(std::chrono::seconds(5));
  cli->set_read_timeout(std::chrono::seconds(20));
  return cli;
}

Result<HttpReply> AdminCall(const std::string& address, const std::string& path, bool post) {
  auto cli = AdminClientFor(address);
  if (!cli.ok()) {
    return cli.status();
  }
  auto res = post ? cli.value()->Post(path.c_str()) : cli.value()->Get(path.c_str());
  if (!res) {
    return Status::Error("http_failed",
                         (post ? "POST " : "GET ") + path + ": " + httplib::to_string(res.error()));
  }
  HttpReply reply;
  reply.status = res->status;
  reply.body = nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (reply.body.is_discarded()) {
    return Status::Error("bad_json", path + " answered non-JSON: " + res->body.substr(0, 200));
  }
  return reply;
}

}  // namespace

Result<HttpReply> AdminGet(const std::string& address, const std::string& path) {
  return AdminCall(address, path, false);
}

Result<HttpReply> AdminPost(const std::string& address, const std::string& path) {
  return AdminCall(address, path, true);
}

Result<HttpText> AdminPostText(const std::string& address, const std::string& path,
                               const std::string& body) {
  auto cli = AdminClientFor(address);
  if (!cli.ok()) {
    return cli.status();
  }
  auto res = cli.value()->Post(path.c_str(), body, "application/json");
  if (!res) {
    return Status::Error("http_failed", "POST " + path + ": " + httplib::to_string(res.error()));
  }
  return HttpText{res->status, res->body, res->get_header_value("Content-Type")};
}

Result<std::vector<nlohmann::json>> AuditRecords(const std::string& address) {
  auto reply = AdminGet(address, "/api/v1/audit?limit=100000");
  if (!reply.ok()) {
    return reply.status();
  }
  if (reply->status != 200 || !reply->body.contains("items")) {
    return Status::Error(
        "bad_reply", "audit answered " + std::to_string(reply->status) + ": " + reply->body.dump());
  }
  std::vector<nlohmann::json> items;
  for (const auto& item : reply->body["items"]) {
    items.push_back(item);
  }
  return items;
}

bool WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = Steady::now() + timeout;
  while (true) {
    if (pred()) {
      return true;
    }
    if (Steady::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::vector<uint64_t> Seqs(const std::vector<v1::DeliveredEvent>& events) {
  std::vector<uint64_t> out;
  out.reserve(events.size());
  for (const auto& e : events) {
    out.push_back(e.event().envelope().hub_seq());
  }
  return out;
}

}  // namespace carehub::itest
