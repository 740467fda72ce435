#pragma once
// One inbound HL7 message in, one ACK out: parse (transcoding MSH-18 ISO 8859-1 / Windows-1252 to
// UTF-8), map (ADT A01-A40 by MapAdt, REF I12-I15 by MapReferral), screen optional demographics
// into data-quality flags (ScreenEvent: an invalid postcode or practice never costs the event),
// validate, publish to the EventSink, and acknowledge. Transport-free, so the MLLP listener and
// tests share it.
//
// AA is returned only after EventSink::Publish returned OK (the events are durable). AE when the
// sink failed: nothing is acknowledged, the sender retries. AR when the message itself is invalid
// (unparseable, unsupported type/trigger/version, unknown facility, invalid NHS number, failed
// carehub::ValidateEvent); resending it unchanged would fail again.
//
// Thread-safe: Process may be called concurrently (the sink must be thread-safe, as EventSink
// implementations are).

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "carehub/adapters/event_sink.h"
#include "carehub/adapters/hl7/ack.h"
#include "carehub/core/clock.h"
#include "carehub/core/validation.h"

namespace carehub::adapters::hl7 {

// AE reason when the sink did not persist the events.
inline constexpr std::string_view kReasonSinkUnavailable = "sink_unavailable";
// AR reason for a message over the configured size limit.
inline constexpr std::string_view kReasonMessageTooLarge = "message_too_large";

struct ProcessorOptions {
  MapperOptions mapper;
  ValidationLimits limits;
  // MSH-3/MSH-4 of our ACKs when the sender left MSH-5/MSH-6 empty.
  AckIdentity identity;
};

struct ProcessResult {
  AckCode code = AckCode::kReject;
  std::string reason;             // empty for AA
  std::string ack;                // ER7, CR-terminated segments, no MLLP framing
  std::string control_id;         // MSH-10 of the input, empty when unreadable
  std::string trigger;            // e.g. "A01", empty when unreadable
  size_t events = 0;              // events published (AA only)
  size_t data_quality_flags = 0;  // flags on those events (AA only)
  // `ack` is empty when the sender's MSH-15/16 condition (NE, ER, SU) asks for no answer to this
  // outcome; the transport then sends nothing.
};

class AdtProcessor {
 public:
  // `sink` and `clock` must outlive the processor.
  AdtProcessor(ProcessorOptions options, EventSink& sink, const Clock& clock);
  AdtProcessor(const AdtProcessor&) = delete;
  AdtProcessor& operator=(const AdtProcessor&) = delete;

  ProcessResult Process(std::string_view raw);

  // For a message over the size limit, of which `prefix` is the start: an AR if its MSH segment
  // can be read from the prefix, nullopt otherwise (the transport then drops the connection).
  std::optional<ProcessResult> RejectOversized(std::string_view prefix);

 private:
  std::string NextControlId();
  // `header` nullopt: no MSH line at all (empty MSA-2).
  ProcessResult Reject(const std::optional<AckHeader>& header, AckCode code,
                       std::string_view reason, std::string text, const ErrorLocation& location,
                       std::string hl7_error_code = {});
  ProcessResult RejectUnparseable(std::string_view raw, const Status& parse_error);
  // Parses `raw`, transcoding it to UTF-8 when MSH-18 declares another supported charset. On
  // failure `refusal` holds the AR to send.
  Result<Message> ParseInDeclaredCharset(std::string_view raw,
                                         std::optional<ProcessResult>* refusal);

  const ProcessorOptions options_;
  EventSink& sink_;
  const Clock& clock_;
  std::atomic<uint64_t> sequence_{0};
};

// Replaces every occurrence of the patient identifiers carried by `events` (NHS number, MRN, names,
// birth date, postcode, address) in `text` with "***": reason texts must never echo them.
std::string RedactIdentifiers(std::string text, const std::vector<v1::Event>& events);

}  // namespace carehub::adapters::hl7
