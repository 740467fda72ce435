#pragma once
// FHIR R4 HTTP intake for GP practices and community providers (DESIGN §1-3).
//
// A FhirListener serves, under base path /fhir:
//   POST /fhir                     a Bundle (transaction, batch or message) or a single resource
//   POST /fhir/Bundle              a Bundle
//   POST /fhir/$process-message    a message Bundle
//   POST /fhir/Encounter           an Encounter          -> ActivityEvent
//   POST /fhir/ServiceRequest      a ServiceRequest      -> ReferralEvent
//   PUT  /fhir/Encounter/{id}      an update of a resource (id must match the body's id)
//   PUT  /fhir/ServiceRequest/{id}
//   GET  /healthz                  200 "ok" while the listener runs
// Every event is validated with carehub::ValidateEvent and handed to the EventSink; a 2xx answer is
// sent only after the sink reports the events durable. docs/adapters_fhir_csv.md describes the
// mapping, the event id scheme, lifecycle rules and the answers (201, 200, 400, 413, 422, 503).
//
// Thread-safety: Start/Stop from one owning thread; Stats() and port() from any thread. Requests
// are served on an internal thread pool; mapping and publishing are serialised so that lifecycle
// decisions (NEW / UPDATE / CANCEL of an earlier event) see the events before them in order.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "carehub/adapters/event_sink.h"
#include "carehub/core/clock.h"
#include "carehub/core/status.h"
#include "carehub/core/validation.h"

namespace carehub::adapters::fhir {

struct FhirListenerOptions {
  std::string host = "127.0.0.1";
  // 0 picks an ephemeral port; read it back with FhirListener::port().
  int port = 0;
  // The publisher's ODS code (envelope.publisher_ods).
  std::string publisher_ods;
  // Site codes this publisher may publish for (envelope.site_ods); publisher_ods is always allowed.
  std::vector<std::string> allowed_ods;
  // envelope.source_system of every event.
  std::string source_system = "fhir";
  // Larger request bodies are answered 413 without being parsed.
  size_t max_body_bytes = 10 * 1024 * 1024;
  // Resources remembered for lifecycle decisions (UPDATE/CANCEL need the earlier event id).
  size_t max_remembered_resources = 200'000;
  ValidationLimits limits;
  // Not owned; must outlive the listener. Used for validation (future timestamps).
  const Clock* clock = &SystemClock::Instance();
};

// Monotonic counters since Start.
struct FhirListenerStats {
  uint64_t requests = 0;
  uint64_t events_published = 0;
  // Events or entries refused with an OperationOutcome issue.
  uint64_t events_rejected = 0;
  uint64_t responses_400 = 0;
  uint64_t responses_413 = 0;
  uint64_t responses_422 = 0;
  uint64_t responses_503 = 0;
};

class FhirListener {
 public:
  // `sink` is not owned and must outlive the listener.
  FhirListener(FhirListenerOptions options, EventSink* sink);
  ~FhirListener();  // Stops if running.
  FhirListener(const FhirListener&) = delete;
  FhirListener& operator=(const FhirListener&) = delete;

  // Binds and starts serving; fails with "bind_failed" or "invalid_options".
  Status Start();
  // Stops accepting, finishes in-flight requests, joins the server thread. Idempotent.
  void Stop();

  // The bound port after a successful Start, else 0.
  int port() const;
  FhirListenerStats Stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace carehub::adapters::fhir
