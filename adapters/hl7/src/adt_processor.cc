#include "carehub/adapters/hl7/adt_processor.h"

#include <cstdio>
#include <utility>

#include "carehub/adapters/data_quality.h"
#include "carehub/adapters/hl7/charset.h"
#include "carehub/adapters/hl7/ref_mapper.h"
#include "carehub/core/strings.h"
#include "field_locations.h"

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

ProcessResult AdtProcessor::Reject(const std::optional<AckHeader>& header, AckCode code,
                                   std::string_view reason, std::string text,
                                   const ErrorLocation& location, std::string hl7_error_code) {
  ProcessResult result;
  result.code = code;
  result.reason = std::string(reason);
  AckDetails details;
  details.code = code;
  details.reason = std::string(reason);
  details.text = std::move(text);
  details.location = location;
  details.hl7_error_code = std::move(hl7_error_code);
  if (header.has_value()) {
    result.control_id = header->control_id;
    result.trigger = header->trigger;
    if (ShouldAnswer(ModeOf(*header), code)) {
      result.ack = BuildAck(*header, details, options_.identity, NextControlId(), clock_.Now());
    }
  } else {
    result.ack = BuildAckWithoutHeader(details, options_.identity, NextControlId(), clock_.Now());
  }
  return result;
}

ProcessResult AdtProcessor::RejectUnparseable(std::string_view raw, const Status& parse_error) {
  // The sender must be able to match even this refusal: read MSH-10 (and MSH-3..6, 9, 12) with
  // the default separators if MSH-1/2 are what is wrong.
  const std::optional<AckHeader> header = ReadHeaderLeniently(raw);
  const std::string& text = parse_error.message();
  ErrorLocation where{"MSH", 0};
  std::string hl7_code;  // 100 (segment sequence) unless the header's separators are at fault
  if (text.find("MSH-2") != std::string::npos || text.find("MSH-1/MSH-2") != std::string::npos) {
    where.field = 2;
    hl7_code = "102";
  } else if (text.find("MSH-1") != std::string::npos) {
    where.field = 1;
    hl7_code = "102";
  }
  return Reject(header, AckCode::kReject, parse_error.code(), text, where, hl7_code);
}

Result<Message> AdtProcessor::ParseInDeclaredCharset(std::string_view raw,
                                                     std::optional<ProcessResult>* refusal) {
  Result<Message> parsed = Message::Parse(raw);
  if (!parsed.ok()) {
    *refusal = RejectUnparseable(raw, parsed.status());
    return parsed.status();
  }
  // MSH-18's first repetition is the message's character set (HL7 v2.5 §2.15.9.18).
  const std::string declared = parsed->Get("MSH", 18);
  const std::optional<std::string> iconv_name = IconvNameForCharset(declared);
  if (!iconv_name.has_value()) {
    const Status unsupported = Status::Error(
        std::string(kReasonUnsupportedCharset),
        "MSH-18 character set is not supported (use UNICODE UTF-8, 8859/1 or WINDOWS-1252)");
    *refusal = Reject(HeaderOf(parsed.value()), AckCode::kReject, unsupported.code(),
                      unsupported.message(), ErrorLocation{"MSH", 18}, "103");
    return unsupported;
  }
  if (*iconv_name == "UTF-8") {
    return parsed;
  }
  Result<std::string> utf8 = TranscodeToUtf8(raw, *iconv_name);
  if (!utf8.ok()) {
    *refusal = Reject(HeaderOf(parsed.value()), AckCode::kReject, utf8.status().code(),
                      utf8.status().message(), ErrorLocation{"MSH", 18}, "102");
    return utf8.status();
  }
  // Separators are ASCII in every accepted charset, so the structure is unchanged.
  Result<Message> reparsed = Message::Parse(utf8.value());
  if (!reparsed.ok()) {
    *refusal = RejectUnparseable(utf8.value(), reparsed.status());
  }
  return reparsed;
}

ProcessResult AdtProcessor::Process(std::string_view raw) {
  std::optional<ProcessResult> refusal;
  Result<Message> parsed = ParseInDeclaredCharset(raw, &refusal);
  if (!parsed.ok()) {
    return std::move(*refusal);
  }
  const Message& message = parsed.value();
  const AckHeader header = HeaderOf(message);
  ErrorLocation where;
  Result<std::vector<v1::Event>> mapped =
      AsciiUpper(std::string(Trim(message.MessageType(), kSpaceTab))) == "REF"
          ? MapReferral(message, options_.mapper, &where)
          : MapAdt(message, options_.mapper, &where);
  if (!mapped.ok()) {
    return Reject(header, AckCode::kReject, mapped.status().code(), mapped.status().message(),
                  where);
  }
  std::vector<v1::Event> events = std::move(mapped).value();
  const Clock::TimePoint now = clock_.Now();
  for (v1::Event& event : events) {
    // Keep the event, flag the field: optional demographics the hub would refuse are moved to
    // data-quality flags before validation.
    ScreenEvent(&event, now);
  }
  for (const v1::Event& event : events) {
    Status valid = ValidateEvent(event, event.ByteSizeLong(), options_.limits, now);
    if (!valid.ok()) {
      // The validator's message names fields; redact in case a value slipped in.
      return Reject(header, AckCode::kReject, valid.code(),
                    RedactIdentifiers(valid.message(), events),
                    LocateEventField(valid.message(), message));
    }
  }
  Status published = sink_.Publish(events);
  if (!published.ok()) {
    return Reject(header, AckCode::kError, kReasonSinkUnavailable,
                  "events not persisted; retry later (" +
                      RedactIdentifiers(published.ToString(), events) + ")",
                  ErrorLocation{});
  }
  ProcessResult result;
  result.code = AckCode::kAccept;
  result.control_id = message.ControlId();
  result.trigger = message.TriggerEvent();
  result.events = events.size();
  for (const v1::Event& event : events) {
    result.data_quality_flags += static_cast<size_t>(event.envelope().data_quality_size());
  }
  if (ShouldAnswer(ModeOf(header), AckCode::kAccept)) {
    result.ack = BuildAck(header, AckDetails{}, options_.identity, NextControlId(), now);
  }
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
  return Reject(HeaderOf(header.value()), AckCode::kReject, kReasonMessageTooLarge,
                "message exceeds the configured maximum size", ErrorLocation{});
}

}  // namespace carehub::adapters::hl7
