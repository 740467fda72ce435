#pragma once
// How an event is encoded for the store, in one place: the canonical bytes a content hash is taken
// over, the content hash itself (part of the stored dedup format), and the hub fields appended to
// the canonical bytes to make the stored record.
//
// Pure functions; thread-safe.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "carehub/v1/event.pb.h"

namespace carehub::hub {

using ContentHash = std::array<uint8_t, 16>;

// Clears the fields only the hub sets (envelope hub_seq and received_at), if any are set. Returns
// whether there were any: then the event is not as its publisher encoded it.
bool ClearHubFields(v1::Event* event);

// Deterministic protobuf encoding of `event` as it stands (the caller clears the hub fields first:
// the canonical form is what the publisher sent).
std::string CanonicalBytes(const v1::Event& event);
// The same bytes into `*out` (replacing what it held, keeping its capacity), with room reserved
// for AppendHubFields so that appending them later does not reallocate. For the ingest path,
// which reuses its buffers from batch to batch.
void CanonicalBytesInto(const v1::Event& event, std::string* out);

// `received` (one event as its publisher encoded it) into `*out`, with the same room for the hub
// fields as CanonicalBytesInto. The ingest path stores what the publisher sent when it can
// (IngestPipeline): copying it costs a fraction of encoding the parsed event again.
void ReceivedBytesInto(std::string_view received, std::string* out);

// Content hash over the bytes an event was accepted as (hub fields excluded): as the publisher sent
// them, or canonical where the hub had to re-encode. It tells a byte-identical resend from anything
// else at once; a resend whose bytes differ is compared with SameEventContent before it is called
// a conflict. Its key is part of the stored format.
ContentHash HashContent(std::string_view accepted_bytes);

// Whether two events are the same event, hub fields aside: their canonical encodings are equal.
// Parses nothing but copies both; for the rare resend whose bytes differ from its original's
// (another encoder, fields in another order).
bool SameEventContent(const v1::Event& a, const v1::Event& b);

// The bytes a stored record was accepted as: `record` without the hub fields AppendHubFields put
// after them, found by encoding `stored`'s hub fields again and matching the record's tail. nullopt
// for a record that does not end so (one written by other means, e.g. a test's whole message).
std::optional<std::string_view> AcceptedBytes(std::string_view record, const v1::Event& stored);

// Appends Event.envelope { hub_seq, received_at } to the accepted bytes, making the stored record.
//
// Why by hand: protobuf merges a repeated embedded message on parse, so canonical + suffix parses
// as the event with its hub fields set — one serialization per event instead of two (the second
// was a measurable share of ingest CPU). The encoding is fixed by event.proto's field numbers:
//   Event.envelope (1, LEN) { hub_seq (20, VARINT), received_at (21, LEN) { seconds (1), nanos (2)
//   } }
// received_at keeps microseconds. event_codec_test checks the result against protobuf's parse.
void AppendHubFields(std::string* bytes, uint64_t hub_seq,
                     std::chrono::system_clock::time_point received_at);

// Protobuf wire format, for the records written by hand (AppendHubFields here, the delivery frame
// of subscribe/delivery_frame.h): a varint; a VARINT field; a LEN field (tag, length, `bytes`), or
// only its tag and length when the caller appends the bytes itself; and their encoded sizes, so a
// message nested in another is written in place instead of built apart and copied.
void AppendVarint(std::string* out, uint64_t value);
void AppendVarintField(std::string* out, uint32_t field, uint64_t value);
void AppendLengthDelimited(std::string* out, uint32_t field, std::string_view bytes);
void AppendLengthDelimitedHeader(std::string* out, uint32_t field, size_t length);
size_t VarintSize(uint64_t value);
// The encoded size of a LEN field of `length` bytes: tag, length, bytes.
size_t LengthDelimitedSize(uint32_t field, size_t length);

}  // namespace carehub::hub
