#include "carehub/adapters/fhir/fhir_listener.h"

#include <httplib.h>

#include <atomic>
#include <deque>
#include <map>
#include <thread>
#include <unordered_map>

#include "carehub/adapters/data_quality.h"
#include "carehub/core/event_types.h"
#include "carehub/core/log.h"
#include "carehub/core/mutex.h"
#include "fhir_mapping.h"
#include "fhir_xml.h"

namespace carehub::adapters::fhir {
namespace {

using internal::Issue;
using internal::MappedEvent;
using internal::MappedRequest;
using internal::RequestKind;
using nlohmann::json;

constexpr char kFhirJson[] = "application/fhir+json";

constexpr char kLogger[] = "adapter.fhir";

// application/fhir+xml (and the generic XML types some senders use), parameters ignored.
bool IsXml(const std::string& content_type) {
  const std::string type = content_type.substr(0, content_type.find(';'));
  return type == "application/fhir+xml" || type == "application/xml" || type == "text/xml";
}

json OperationOutcome(const std::vector<Issue>& issues, const std::string& severity = "error") {
  json outcome = {{"resourceType", "OperationOutcome"}, {"issue", json::array()}};
  for (const Issue& issue : issues) {
    json item = {{"severity", severity}, {"code", issue.code}, {"diagnostics", issue.diagnostics}};
    if (!issue.expression.empty()) {
      item["expression"] = json::array({issue.expression});
    }
    outcome["issue"].push_back(std::move(item));
  }
  return outcome;
}

void Answer(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), kFhirJson);
}

// Where in the resource a validation reason most likely points.
std::string ExpressionFor(const std::string& reason, const MappedEvent& mapped) {
  if (reason == "invalid_nhs_number") {
    return mapped.path + ".subject";
  }
  if (reason == "invalid_timestamp" || reason == "future_timestamp") {
    return mapped.path + (mapped.event.has_activity() ? ".period" : ".authoredOn");
  }
  if (reason == "invalid_ods_code") {
    return mapped.path + (mapped.event.has_activity() ? ".serviceProvider" : ".requester");
  }
  return mapped.path;
}

}  // namespace

class FhirListener::Impl {
 public:
  Impl(FhirListenerOptions options, EventSink* sink) : options_(std::move(options)), sink_(sink) {
    config_.publisher_ods = options_.publisher_ods;
    config_.source_system = options_.source_system;
    config_.allowed_ods.insert(options_.publisher_ods);
    config_.allowed_ods.insert(options_.allowed_ods.begin(), options_.allowed_ods.end());
  }

  ~Impl() { Stop(); }

  Status Start() {
    if (options_.publisher_ods.empty() || sink_ == nullptr) {
      return Status::Error("invalid_options", "publisher_ods and a sink are required");
    }
    if (thread_.joinable()) {
      return Status::Error("invalid_options", "already started");
    }
    server_ = std::make_unique<httplib::Server>();
    server_->set_payload_max_length(options_.max_body_bytes);
    Route();
    int port = options_.port;
    if (port == 0) {
      port = server_->bind_to_any_port(options_.host);
      if (port < 0) {
        port = 0;
      }
    } else if (!server_->bind_to_port(options_.host, port)) {
      port = 0;
    }
    if (port <= 0) {
      return Status::Error("bind_failed",
                           "cannot bind " + options_.host + ":" + std::to_string(options_.port));
    }
    port_.store(port);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    Logger(kLogger)->info("FHIR listener on {}:{} for publisher {}", options_.host, port,
                          options_.publisher_ods);
    return Status::Ok();
  }

  void Stop() {
    if (!thread_.joinable()) {
      return;
    }
    server_->stop();
    thread_.join();
    port_.store(0);
    Logger(kLogger)->info("FHIR listener stopped");
  }

  int port() const { return port_.load(); }

  FhirListenerStats Stats() const {
    FhirListenerStats stats;
    stats.requests = requests_.load();
    stats.events_published = events_published_.load();
    stats.events_rejected = events_rejected_.load();
    stats.responses_400 = responses_400_.load();
    stats.responses_413 = responses_413_.load();
    stats.responses_422 = responses_422_.load();
    stats.responses_503 = responses_503_.load();
    return stats;
  }

 private:
  // What the listener remembers of a published event: enough to answer a resend identically
  // and to decide lifecycle for later versions of the same resource.
  struct Published {
    std::string event_id;
    std::string type_name;
    v1::Lifecycle lifecycle = v1::LIFECYCLE_NEW;
    std::string supersedes;
  };

  void Route() {
    server_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok\n", "text/plain");
    });
    auto post = [this](const std::string& type) {
      return [this, type](const httplib::Request& req, httplib::Response& res) {
        Handle(req, res, type, "");
      };
    };
    server_->Post("/fhir", post(""));
    server_->Post("/fhir/", post(""));
    server_->Post("/fhir/Bundle", post("Bundle"));
    server_->Post(R"(/fhir/\$process-message)", post("Bundle"));
    server_->Post("/fhir/Encounter", post("Encounter"));
    server_->Post("/fhir/ServiceRequest", post("ServiceRequest"));
    server_->Put(R"(/fhir/(Encounter|ServiceRequest)/([A-Za-z0-9\-\.]{1,64}))",
                 [this](const httplib::Request& req, httplib::Response& res) {
                   Handle(req, res, req.matches[1], req.matches[2]);
                 });
    // Mapping code does not throw by design; should a library call throw anyway, the client gets a
    // 500 with an OperationOutcome rather than a dropped connection.
    server_->set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
          Logger(kLogger)->error("unexpected exception while handling a request");
          Answer(res, 500, OperationOutcome({{"exception", "internal error", ""}}));
        });
    // httplib answers over-size bodies itself (413); give them an OperationOutcome and count them.
    server_->set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request&,
                                                                           httplib::Response& res) {
      if (res.status == 413) {
        ++requests_;
        ++responses_413_;
        Answer(res, 413,
               OperationOutcome(
                   {{"too-costly",
                     "request body exceeds " + std::to_string(options_.max_body_bytes) + " bytes",
                     ""}}));
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    }));
  }

  void Handle(const httplib::Request& req, httplib::Response& res, const std::string& type,
              const std::string& put_id) CAREHUB_EXCLUDES(publish_mutex_) {
    ++requests_;
    json root;
    if (IsXml(req.get_header_value("Content-Type"))) {
      // application/fhir+xml: the same resource in its XML form, read into the JSON form.
      Result<json> converted = internal::FhirXmlToJson(req.body);
      if (!converted.ok()) {
        ++responses_400_;
        Answer(res, 400, OperationOutcome({{"structure", converted.status().message(), ""}}));
        Logger(kLogger)->debug("400: unreadable XML body of {} bytes", req.body.size());
        return;
      }
      root = std::move(converted).value();
    } else {
      root = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    }
    if (root.is_discarded() || !root.is_object() || !root.contains("resourceType") ||
        !root["resourceType"].is_string()) {
      ++responses_400_;
      Answer(res, 400,
             OperationOutcome({{"structure",
                                root.is_discarded() ? "the body is not valid JSON"
                                                    : "the body is not a FHIR resource "
                                                      "(no resourceType)",
                                ""}}));
      Logger(kLogger)->debug("400: unparseable body of {} bytes", req.body.size());
      return;
    }
    const json* id = root.contains("id") ? &root["id"] : nullptr;
    if (!put_id.empty() &&
        (id == nullptr || !id->is_string() || id->get<std::string>() != put_id)) {
      ++responses_400_;
      Answer(res, 400,
             OperationOutcome({{"invalid", "the resource id must match the id in the URL", "id"}}));
      return;
    }

    MappedRequest mapped = internal::MapRequest(root, config_, type);
    if (!mapped.request_issues.empty()) {
      ++responses_422_;
      Answer(res, 422, OperationOutcome(mapped.request_issues));
      return;
    }

    // Lifecycle, validation and publishing in request order, one request at a time: later
    // versions of a resource must see the earlier ones.
    MutexLock lock(publish_mutex_);
    std::map<std::string, Published> pending;  // resource_key -> event, for this request
    std::vector<v1::Event> events;
    std::vector<int> event_entry;  // entry index of each event
    std::vector<Published> event_records;
    for (size_t i = 0; i < mapped.entries.size(); ++i) {
      internal::EntryResult& entry = mapped.entries[i];
      if (!entry.event.has_value()) {
        continue;
      }
      MappedEvent& event = *entry.event;
      Published record = DecideLifecycle(event, pending);
      v1::Envelope* envelope = event.event.mutable_envelope();
      envelope->set_lifecycle(record.lifecycle);
      envelope->set_supersedes_event_id(record.supersedes);
      // Keep the event, flag the field: optional demographics the hub would refuse become
      // data-quality flags (adapters/common data_quality.h).
      ScreenEvent(&event.event, options_.clock->Now());
      Status valid = ValidateEvent(event.event, event.event.ByteSizeLong(), options_.limits,
                                   options_.clock->Now());
      if (!valid.ok()) {
        entry.issues.push_back({"invalid", valid.ToString(), ExpressionFor(valid.code(), event)});
        continue;
      }
      pending[event.resource_key] = record;
      events.push_back(event.event);
      event_entry.push_back(static_cast<int>(i));
      event_records.push_back(record);
    }

    std::vector<Issue> all_issues;
    for (const internal::EntryResult& entry : mapped.entries) {
      all_issues.insert(all_issues.end(), entry.issues.begin(), entry.issues.end());
      if (!entry.issues.empty()) {
        ++events_rejected_;
      }
    }
    bool batch = mapped.kind == RequestKind::kBatch;
    if (!batch && !all_issues.empty()) {
      ++responses_422_;
      Logger(kLogger)->debug("422: {} issue(s)", all_issues.size());
      Answer(res, 422, OperationOutcome(all_issues));
      return;
    }

    if (!events.empty()) {
      Status published = sink_->Publish(events);
      if (!published.ok()) {
        ++responses_503_;
        Logger(kLogger)->warn("sink refused {} event(s): {}", events.size(), published.code());
        res.set_header("Retry-After", "5");
        Answer(
            res, 503,
            OperationOutcome({{"transient", "the events could not be stored; retry later", ""}}));
        return;
      }
      events_published_ += events.size();
      for (size_t k = 0; k < events.size(); ++k) {
        Remember(mapped.entries[event_entry[k]].event->resource_key, event_records[k]);
      }
    }

    if (!batch) {
      json body = {{"event_ids", json::array()}};
      for (const v1::Event& event : events) {
        body["event_ids"].push_back(event.envelope().event_id());
      }
      if (!mapped.notes.empty()) {
        body["notes"] = OperationOutcome(mapped.notes, "information");
      }
      Answer(res, 201, body);
      return;
    }
    json response = {
        {"resourceType", "Bundle"}, {"type", "batch-response"}, {"entry", json::array()}};
    size_t next_event = 0;
    for (size_t i = 0; i < mapped.entries.size(); ++i) {
      const internal::EntryResult& entry = mapped.entries[i];
      json item;
      if (!entry.issues.empty()) {
        item["response"] = {{"status", "422 Unprocessable Entity"},
                            {"outcome", OperationOutcome(entry.issues)}};
      } else if (next_event < event_entry.size() &&
                 event_entry[next_event] == static_cast<int>(i)) {
        item["response"] = {{"status", "201 Created"},
                            {"location", events[next_event].envelope().event_id()}};
        ++next_event;
      } else {
        item["response"] = {{"status", "200 OK"}};
      }
      response["entry"].push_back(std::move(item));
    }
    Answer(res, 200, response);
  }

  // docs/adapters_fhir_csv.md, "Lifecycle".
  Published DecideLifecycle(const MappedEvent& event,
                            const std::map<std::string, Published>& pending)
      CAREHUB_REQUIRES(publish_mutex_) {
    Published record;
    record.event_id = event.event.envelope().event_id();
    record.type_name = EventTypeName(event.event);
    // A resend: answer exactly as before so the hub sees identical content (DUPLICATE).
    auto sent = by_event_id_.find(record.event_id);
    if (sent != by_event_id_.end()) {
      record.lifecycle = sent->second.lifecycle;
      record.supersedes = sent->second.supersedes;
      return record;
    }
    const Published* previous = Find(event.resource_key, pending);
    if (previous == nullptr && !event.replaces_key.empty()) {
      previous = Find(event.replaces_key, pending);
    }
    if (previous == nullptr) {
      return record;
    }
    if (event.cancels) {
      record.lifecycle = v1::LIFECYCLE_CANCEL;
      record.supersedes = previous->event_id;
    } else if (previous->type_name == record.type_name) {
      record.lifecycle = v1::LIFECYCLE_UPDATE;
      record.supersedes = previous->event_id;
    }
    return record;
  }

  const Published* Find(const std::string& key, const std::map<std::string, Published>& pending)
      CAREHUB_REQUIRES(publish_mutex_) {
    auto it = pending.find(key);
    if (it != pending.end()) {
      return &it->second;
    }
    auto latest = by_resource_.find(key);
    return latest == by_resource_.end() ? nullptr : &latest->second;
  }

  void Remember(const std::string& resource_key, const Published& record)
      CAREHUB_REQUIRES(publish_mutex_) {
    by_resource_[resource_key] = record;
    if (by_event_id_.emplace(record.event_id, record).second) {
      order_.push_back({resource_key, record.event_id});
    }
    // Bounded memory: forget the oldest events first.
    while (order_.size() > options_.max_remembered_resources) {
      const auto& [oldest_key, oldest_id] = order_.front();
      auto it = by_resource_.find(oldest_key);
      if (it != by_resource_.end() && it->second.event_id == oldest_id) {
        by_resource_.erase(it);
      }
      by_event_id_.erase(oldest_id);
      order_.pop_front();
    }
  }

  FhirListenerOptions options_;
  EventSink* sink_;
  internal::MappingConfig config_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::atomic<int> port_{0};

  Mutex publish_mutex_;
  std::unordered_map<std::string, Published> by_resource_ CAREHUB_GUARDED_BY(publish_mutex_);
  std::unordered_map<std::string, Published> by_event_id_ CAREHUB_GUARDED_BY(publish_mutex_);
  std::deque<std::pair<std::string, std::string>> order_ CAREHUB_GUARDED_BY(publish_mutex_);

  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> events_published_{0};
  std::atomic<uint64_t> events_rejected_{0};
  std::atomic<uint64_t> responses_400_{0};
  std::atomic<uint64_t> responses_413_{0};
  std::atomic<uint64_t> responses_422_{0};
  std::atomic<uint64_t> responses_503_{0};
};

FhirListener::FhirListener(FhirListenerOptions options, EventSink* sink)
    : impl_(std::make_unique<Impl>(std::move(options), sink)) {}

FhirListener::~FhirListener() = default;

Status FhirListener::Start() { return impl_->Start(); }

void FhirListener::Stop() { impl_->Stop(); }

int FhirListener::port() const { return impl_->port(); }

FhirListenerStats FhirListener::Stats() const { return impl_->Stats(); }

}  // namespace carehub::adapters::fhir
