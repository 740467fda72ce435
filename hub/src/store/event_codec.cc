#include "carehub/hub/store/event_codec.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <sodium.h>

namespace carehub::hub {
namespace {

// Room for the envelope's hub fields at their largest, any values: tag and length (1 + 1), hub_seq
// (2 + 10), received_at's tag and length (2 + 1), seconds (1 + 10), nanos (1 + 10): 39 bytes.
constexpr size_t kHubFieldsRoom = 48;

// The one varint encoder: into a buffer the caller sized (up to 10 bytes), returning its new end.
char* PutVarint(char* out, uint64_t value) {
  while (value >= 0x80) {
    *out++ = static_cast<char>(value | 0x80);
    value >>= 7;
  }
  *out++ = static_cast<char>(value);
  return out;
}

// Writes the hub fields into `out` (kHubFieldsRoom bytes), returning the end: on the stack, then
// appended at once (byte by byte, with a capacity check each, this was ~2% of the ingest thread).
char* PutHubFields(char* out, uint64_t hub_seq, uint64_t seconds, uint64_t nanos) {
  const size_t ts_len = 1 + VarintSize(seconds) + (nanos ? 1 + VarintSize(nanos) : 0);
  const size_t env_len = 2 + VarintSize(hub_seq) + 2 + VarintSize(ts_len) + ts_len;
  char* p = out;
  *p++ = 0x0A;  // field 1, LEN
  p = PutVarint(p, env_len);
  *p++ = static_cast<char>(0xA0);  // field 20, VARINT (two-byte tag)
  *p++ = 0x01;
  p = PutVarint(p, hub_seq);
  *p++ = static_cast<char>(0xAA);  // field 21, LEN (two-byte tag)
  *p++ = 0x01;
  p = PutVarint(p, ts_len);
  *p++ = 0x08;  // seconds
  p = PutVarint(p, seconds);
  if (nanos) {
    *p++ = 0x10;  // nanos
    p = PutVarint(p, nanos);
  }
  return p;
}

}  // namespace

bool ClearHubFields(v1::Event* event) {
  if (!event->has_envelope() ||
      (event->envelope().hub_seq() == 0 && !event->envelope().has_received_at())) {
    return false;
  }
  event->mutable_envelope()->clear_hub_seq();
  event->mutable_envelope()->clear_received_at();
  return true;
}

std::string CanonicalBytes(const v1::Event& event) {
  std::string out;
  CanonicalBytesInto(event, &out);
  return out;
}

void CanonicalBytesInto(const v1::Event& event, std::string* out) {
  const size_t size = event.ByteSizeLong();
  out->clear();
  out->reserve(size + kHubFieldsRoom);
  // Exactly `size` bytes: a StringOutputStream would first zero-fill the whole capacity, which for
  // a reused buffer is as large as the largest event it ever held.
  out->resize(size);
  google::protobuf::io::ArrayOutputStream array(out->data(), static_cast<int>(size));
  google::protobuf::io::CodedOutputStream coded(&array);
  coded.SetSerializationDeterministic(true);
  event.SerializeWithCachedSizes(&coded);
}

void ReceivedBytesInto(std::string_view received, std::string* out) {
  out->clear();
  out->reserve(received.size() + kHubFieldsRoom);
  out->append(received);
}

ContentHash HashContent(std::string_view accepted_bytes) {
  // SipHash-2-4 with 128-bit output (libsodium): it costs a third of BLAKE2b on ~300-byte events.
  // The fixed key is part of the stored format: changing it would turn every resend into a
  // CONFLICT.
  static const unsigned char kKey[crypto_shorthash_siphashx24_KEYBYTES] = {
      'c', 'a', 'r', 'e', 'h', 'u', 'b', '-', 'd', 'e', 'd', 'u', 'p', '-', 'v', '1'};
  ContentHash h{};
  static_assert(sizeof(h) == crypto_shorthash_siphashx24_BYTES);
  crypto_shorthash_siphashx24(h.data(),
                              reinterpret_cast<const unsigned char*>(accepted_bytes.data()),
                              accepted_bytes.size(), kKey);
  return h;
}

void AppendHubFields(std::string* bytes, uint64_t hub_seq,
                     std::chrono::system_clock::time_point received_at) {
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(received_at.time_since_epoch()).count();
  char fields[kHubFieldsRoom];
  const char* end = PutHubFields(fields, hub_seq, static_cast<uint64_t>(micros / 1'000'000),
                                 static_cast<uint64_t>((micros % 1'000'000) * 1000));
  bytes->append(fields, static_cast<size_t>(end - fields));
}

bool SameEventContent(const v1::Event& a, const v1::Event& b) {
  v1::Event a_sent = a;
  v1::Event b_sent = b;
  ClearHubFields(&a_sent);
  ClearHubFields(&b_sent);
  return CanonicalBytes(a_sent) == CanonicalBytes(b_sent);
}

std::optional<std::string_view> AcceptedBytes(std::string_view record, const v1::Event& stored) {
  const auto& envelope = stored.envelope();
  char fields[kHubFieldsRoom];
  const char* end = PutHubFields(fields, envelope.hub_seq(),
                                 static_cast<uint64_t>(envelope.received_at().seconds()),
                                 static_cast<uint64_t>(envelope.received_at().nanos()));
  const std::string_view suffix(fields, static_cast<size_t>(end - fields));
  if (!record.ends_with(suffix)) {
    return std::nullopt;
  }
  return record.substr(0, record.size() - suffix.size());
}

size_t VarintSize(uint64_t value) {
  size_t n = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++n;
  }
  return n;
}

size_t LengthDelimitedSize(uint32_t field, size_t length) {
  return VarintSize((uint64_t{field} << 3) | 2) + VarintSize(length) + length;
}

void AppendLengthDelimitedHeader(std::string* out, uint32_t field, size_t length) {
  AppendVarint(out, (uint64_t{field} << 3) | 2);  // wire type 2: LEN
  AppendVarint(out, length);
}

void AppendVarint(std::string* out, uint64_t value) {
  char buffer[10];
  out->append(buffer, static_cast<size_t>(PutVarint(buffer, value) - buffer));
}

void AppendVarintField(std::string* out, uint32_t field, uint64_t value) {
  AppendVarint(out, uint64_t{field} << 3);  // wire type 0: VARINT
  AppendVarint(out, value);
}

void AppendLengthDelimited(std::string* out, uint32_t field, std::string_view bytes) {
  AppendLengthDelimitedHeader(out, field, bytes.size());
  out->append(bytes);
}

}  // namespace carehub::hub
