// MLLP framing (adapters/hl7 MllpFramer): an arbitrary byte stream fed in chunks of sizes the
// input chooses, each complete frame handed to the AdtProcessor as the listener does (oversized
// ones to RejectOversized).
//
// Invariants: the frames found, and the count of discarded bytes, do not depend on the chunking;
// a frame never holds a block character; memory per frame stays within the limits; every byte is
// accounted for (in a frame, discarded, or a frame's framing).

#include <vector>

#include "carehub/adapters/hl7/adt_processor.h"
#include "carehub/adapters/hl7/mllp_framer.h"
#include "fuzz_support.h"

namespace {

namespace hl7 = carehub::adapters::hl7;

struct Seen {
  std::string data;
  size_t bytes;
  bool oversized;
  bool operator==(const Seen&) const = default;
};

class NullSink final : public carehub::adapters::EventSink {
 public:
  carehub::Status Publish(const std::vector<carehub::v1::Event>&) override {
    return carehub::Status::Ok();
  }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  carehub::fuzz::QuietLoggers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  carehub::fuzz::Bytes in(data, size);
  const size_t max_message = 1 + in.Byte() * 4;  // small, so the oversized path is reached
  const size_t prefix = 1 + in.Byte();
  const uint8_t chunk_seed = in.Byte();
  std::string_view stream = in.rest();

  // Reference: the whole stream at once.
  std::vector<Seen> whole;
  hl7::MllpFramer reference(max_message, prefix);
  reference.Feed(stream, [&](const hl7::MllpFrame& f) {
    whole.push_back({std::string(f.data), f.bytes, f.oversized});
    return true;
  });
  const uint64_t whole_discarded = reference.TakeDiscarded();

  // The same stream in chunks of 1..16 bytes, sizes from a simple generator seeded by the input.
  static carehub::fuzz::FixedClock clock;
  NullSink sink;
  hl7::ProcessorOptions options;
  options.mapper.publisher_ods = "RXK";
  hl7::AdtProcessor processor(options, sink, clock);
  std::vector<Seen> chunked;
  hl7::MllpFramer framer(max_message, prefix);
  uint64_t discarded = 0;
  uint32_t state = chunk_seed * 2654435761u + 1;
  size_t pos = 0;
  while (pos < stream.size()) {
    state = state * 1103515245u + 12345u;
    size_t n = std::min<size_t>(1 + (state >> 16) % 16, stream.size() - pos);
    size_t used = framer.Feed(stream.substr(pos, n), [&](const hl7::MllpFrame& f) {
      CAREHUB_FUZZ_CHECK(f.data.find(hl7::kMllpStartBlock) == std::string_view::npos &&
                             f.data.find(hl7::kMllpEndBlock) == std::string_view::npos,
                         "block character inside a frame");
      CAREHUB_FUZZ_CHECK(f.data.size() <= std::max(max_message, prefix), "frame kept too much");
      CAREHUB_FUZZ_CHECK(f.bytes >= f.data.size(), "frame size below what was kept");
      CAREHUB_FUZZ_CHECK(f.oversized == (f.bytes > max_message), "oversized flag");
      chunked.push_back({std::string(f.data), f.bytes, f.oversized});
      if (f.oversized) {
        (void)processor.RejectOversized(f.data);
      } else {
        hl7::ProcessResult r = processor.Process(f.data);
        // Unless enhanced mode (MSH-15/16 NE, ER or SU) asked for no answer to this outcome.
        const auto header = hl7::ReadHeaderLeniently(f.data);
        const std::string condition = header ? hl7::ModeOf(*header).condition : std::string();
        CAREHUB_FUZZ_CHECK(!r.ack.empty() || (!condition.empty() && condition != "AL"),
                           "every message is answered");
      }
      return true;
    });
    CAREHUB_FUZZ_CHECK(used == n, "a framer that is not closing reads everything");
    discarded += framer.TakeDiscarded();
    pos += n;
  }
  CAREHUB_FUZZ_CHECK(chunked == whole, "frames depend on the chunking");
  CAREHUB_FUZZ_CHECK(discarded == whole_discarded, "discarded bytes depend on the chunking");
  uint64_t in_frames = 0;
  for (const auto& f : whole) {
    in_frames += f.bytes + 2;  // start and end blocks
  }
  CAREHUB_FUZZ_CHECK(in_frames + whole_discarded <= stream.size(), "bytes counted twice");

  // A closing connection stops at the frame it was handed.
  hl7::MllpFramer closing(max_message, prefix);
  size_t used = closing.Feed(stream, [](const hl7::MllpFrame&) { return false; });
  CAREHUB_FUZZ_CHECK(used <= stream.size(), "read past the input");
  if (!whole.empty()) {
    CAREHUB_FUZZ_CHECK(stream[used - 1] == hl7::kMllpEndBlock,
                       "stopped elsewhere than a frame end");
  }
  return 0;
}
