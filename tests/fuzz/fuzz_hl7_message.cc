// HL7 v2 parsing and ADT mapping (adapters/hl7): Message::Parse on arbitrary bytes, every accessor
// over what it parsed, then the AdtProcessor (parse, map, validate, publish, ACK) as the MLLP
// listener runs it, with a sink that keeps what it is given.
//
// Invariants: accessors never fail on any position; an escaped value decodes back to itself; the
// ACK always parses as HL7 and echoes the code; published events validate and re-encode.
//
// Regression seeds: regress_latin1_address (a non-UTF-8 byte reached a published event).

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "carehub/adapters/hl7/adt_processor.h"
#include "carehub/adapters/hl7/message.h"
#include "fuzz_support.h"

namespace {

namespace hl7 = carehub::adapters::hl7;

class KeepingSink final : public carehub::adapters::EventSink {
 public:
  carehub::Status Publish(const std::vector<carehub::v1::Event>& events) override {
    published = events;
    return carehub::Status::Ok();
  }
  std::vector<carehub::v1::Event> published;
};

void WalkMessage(const hl7::Message& message) {
  for (size_t s = 0; s < message.SegmentCount(); ++s) {
    hl7::Segment segment = message.segment(s);
    (void)segment.name();
    const int fields = segment.FieldCount();
    CAREHUB_FUZZ_CHECK(fields >= 0, "negative field count");
    for (int f = 0; f <= fields + 1 && f < 64; ++f) {
      (void)segment.RawField(f);
      const int reps = segment.RepetitionCount(f);
      CAREHUB_FUZZ_CHECK(reps >= 0, "negative repetition count");
      for (int r = 0; r <= reps && r < 4; ++r) {
        for (int c = 0; c < 4; ++c) {
          for (int sc = 0; sc < 3; ++sc) {
            (void)segment.Get(f, r, c, sc);
          }
        }
      }
    }
  }
  (void)message.MessageType();
  (void)message.TriggerEvent();
  (void)message.ControlId();
  (void)message.Version();
  (void)message.Get("PID", 3, 1, 4);
  (void)message.Get("ZZZ", -1, -1, -1);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  carehub::fuzz::QuietLoggers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view raw(reinterpret_cast<const char*>(data), size);

  carehub::Result<hl7::Message> parsed = hl7::Message::Parse(raw);
  if (parsed.ok()) {
    WalkMessage(parsed.value());
    // Escape is the inverse of decoding: a value escaped into a field reads back unchanged.
    const hl7::Separators& seps = parsed->separators();
    std::string value = parsed->Get("MSH", 10);
    std::string probe = std::string("MSH") + seps.field + seps.component + seps.repetition +
                        seps.escape + seps.subcomponent + seps.field + hl7::Escape(value, seps) +
                        "\r";
    carehub::Result<hl7::Message> again = hl7::Message::Parse(probe);
    CAREHUB_FUZZ_CHECK(again.ok(), "a header of the same separators parses");
    // Line breaks travel as \.br\, which decodes to LF: a CR comes back as LF by design.
    std::string expected = value;
    std::replace(expected.begin(), expected.end(), '\r', '\n');
    CAREHUB_FUZZ_CHECK(again->Get("MSH", 3) == expected, "escaped value reads back");
  } else {
    CAREHUB_FUZZ_CHECK(!parsed.status().code().empty(), "failure without a reason");
  }

  static carehub::fuzz::FixedClock clock;
  KeepingSink sink;
  hl7::ProcessorOptions options;
  options.mapper.publisher_ods = "RXK";
  options.mapper.allowed_facilities = {"RXK01", "RXK02"};
  options.identity.facility = "RXK";
  hl7::AdtProcessor processor(options, sink, clock);
  hl7::ProcessResult result = processor.Process(raw);
  // Enhanced mode (MSH-15/16 NE, ER or SU) may ask for no answer to this outcome; AL or nothing
  // always gets one.
  const std::optional<hl7::AckHeader> header = hl7::ReadHeaderLeniently(raw);
  const std::string condition = header ? hl7::ModeOf(*header).condition : std::string();
  if (result.ack.empty()) {
    CAREHUB_FUZZ_CHECK(!condition.empty() && condition != "AL", "an answer is missing");
  } else {
    carehub::Result<hl7::Message> ack = hl7::Message::Parse(result.ack);
    CAREHUB_FUZZ_CHECK(ack.ok(), "the ACK parses: " + ack.status().ToString());
    const std::string msa1 = ack->Get("MSA", 1);
    CAREHUB_FUZZ_CHECK(
        msa1 == hl7::AckCodeName(result.code) || msa1 == hl7::CommitCodeName(result.code),
        "MSA-1 is the code");
  }
  if (result.code == hl7::AckCode::kAccept) {
    CAREHUB_FUZZ_CHECK(result.events == sink.published.size(), "events counted");
    CAREHUB_FUZZ_CHECK(!sink.published.empty(), "accepted without events");
    for (const auto& event : sink.published) {
      carehub::Status valid =
          carehub::ValidateEvent(event, event.ByteSizeLong(), options.limits, clock.Now());
      CAREHUB_FUZZ_CHECK(valid.ok(), valid.ToString());
      carehub::fuzz::CheckReencodes(event);
    }
  } else {
    CAREHUB_FUZZ_CHECK(!result.reason.empty(), "refusal without a reason");
    CAREHUB_FUZZ_CHECK(sink.published.empty(), "refused but published");
  }
  return 0;
}
