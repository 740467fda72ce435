#include "carehub/adapters/hl7/adt_processor.h"

#include <cstdio>
#include <utility>

namespace carehub::adapters::hl7 {
namespace {

void CollectIdentifiers(const v1::Patient& p, std::vector<std::string>* out) {
  for (const std::string* value :
       {&p.nhs_number(), &p.local_mrn(), &p.given_name(), &p.family_name(), &p.birth_date(),
        &p.postcode(), &p.address()}) {
    // Very short values ("A", "1") would redact ordinary words; they identify no one alone.
    if (value->size() >= 3) {
      out->push_back(*value);
    }
  }
  if (p.birth_date().size() == 10) {
    // The HL7 form as well as the ISO form.
    std::string hl7 =
        p.birth_date().substr(0, 4) + p.birth_date().substr(5, 2) + p.birth_date().substr(8, 2);
    out->push_back(hl7);
  }
}

}  // namespace

std::string RedactIdentifiers(std::string text, const std::vector<v1::Event>& events) {
  std::vector<std::string> identifiers;
  for (const v1::Event& event : events) {
    CollectIdentifiers(event.envelope().patient(), &identifiers);
    if (event.has_activity() && event.activity().has_merged_patient()) {
      CollectIdentifiers(event.activity().merged_patient(), &identifiers);
    }
  }
  for (const std::string& id : identifiers) {
    size_t pos = 0;
    while ((pos = text.find(id, pos)) != std::string::npos) {
      text.replace(pos, id.size(), "***");
      pos += 3;
    }
  }
  return text;
}

AdtProcessor::AdtProcessor(ProcessorOptions options, EventSink& sink, const Clock& clock)
    : options_(std::move(options)), sink_(sink), clock_(clock) {}

std::string AdtProcessor::NextControlId() {
  // "CH" + Unix milliseconds + a 5-digit sequence: 20 characters, the v2.5 MSH-10 limit.
  const uint64_t seq = sequence_.fetch_add(1, std::memory_order_relaxed) % 100000;
  char buf[32];
  std::snprintf(buf, sizeof(buf), "CH%013lld%05llu",
                static_cast<long long>(ToUnixMillis(clock_.Now()) % 10000000000000LL),
                static_cast<unsigned long long>(seq));
  return buf;
}

ProcessResult AdtProcessor::Reject(const Message* message, AckCode code, std::string_view reason,
                                   std::string text, const ErrorLocation& location) {
  ProcessResult result;
  result.code = code;
  result.reason = std::string(reason);
  AckDetails details;
  details.code = code;
  details.reason = std::string(reason);
  details.text = std::move(text);
  details.location = location;
  if (message != nullptr) {
    result.control_id = message->ControlId();
    result.trigger = message->TriggerEvent();
    result.ack = BuildAck(*message, details, options_.identity, NextControlId(), clock_.Now());
  } else {
    result.ack = BuildAckWithoutHeader(details, options_.identity, NextControlId(), clock_.Now());
  }
  return result;
}

ProcessResult AdtProcessor::Process(std::string_view raw) {
  Result<Message> parsed = Message::Parse(raw);
  if (!parsed.ok()) {
    return Reject(nullptr, AckCode::kReject, parsed.status().code(), parsed.status().message(),
                  ErrorLocation{"MSH", 0});
  }
  const Message& message = parsed.value();
  ErrorLocation where;
  Result<std::vector<v1::Event>> mapped = MapAdt(message, options_.mapper, &where);
  if (!mapped.ok()) {
    return Reject(&message, AckCode::kReject, mapped.status().code(), mapped.status().message(),
                  where);
  }
  const std::vector<v1::Event>& events = mapped.value();
  const Clock::TimePoint now = clock_.Now();
  for (const v1::Event& event : events) {
    Status valid = ValidateEvent(event, event.ByteSizeLong(), options_.limits, now);
    if (!valid.ok()) {
      // The validator's message names fields; redact in case a value slipped in.
      return Reject(&message, AckCode::kReject, valid.code(),
                    RedactIdentifiers(valid.message(), events), ErrorLocation{});
    }
  }
  Status published = sink_.Publish(events);
  if (!published.ok()) {
    return Reject(&message, AckCode::kError, kReasonSinkUnavailable,
                  "events not persisted; retry later (" +
                      RedactIdentifiers(published.ToString(), events) + ")",
                  ErrorLocation{});
  }
  ProcessResult result;
  result.code = AckCode::kAccept;
  result.control_id = message.ControlId();
  result.trigger = message.TriggerEvent();
  result.events = events.size();
  result.ack = BuildAck(message, AckDetails{}, options_.identity, NextControlId(), now);
  return result;
}

std::optional<ProcessResult> AdtProcessor::RejectOversized(std::string_view prefix) {
  // Only the header is needed; later segments may be cut anywhere.
  size_t start = prefix.find_first_not_of("\r\n \t");
  if (start == std::string_view::npos) {
    return std::nullopt;
  }
  size_t end = prefix.find_first_of("\r\n", start);
  if (end == std::string_view::npos) {
    // The header itself was cut: it cannot be trusted.
    return std::nullopt;
  }
  Result<Message> header = Message::Parse(prefix.substr(start, end - start));
  if (!header.ok() || header->ControlId().empty()) {
    return std::nullopt;
  }
  return Reject(&header.value(), AckCode::kReject, kReasonMessageTooLarge,
                "message exceeds the configured maximum size", ErrorLocation{});
}

}  // namespace carehub::adapters::hl7
