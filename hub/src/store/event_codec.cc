#include "carehub/hub/store/event_codec.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <sodium.h>

namespace carehub::hub {
namespace {

// Room for the envelope's hub fields at their largest, any values: tag and length (1 + 1), hub_seq
// (2 + 10), received_at's tag and length (2 + 1), seconds (1 + 10), nanos (1 + 10): 39 bytes.
constexpr size_t kHubFieldsRoom = 48;

char* PutVarint(char* out, uint64_t value) {
  while (value >= 0x80) {
    *out++ = static_cast<char>(value | 0x80);
    value >>= 7;
  }
  *out++ = static_cast<char>(value);
  return out;
}

// Built on the stack and appended at once: byte by byte, with a capacity check each, this was
// ~2% of the ingest thread.
void AppendHubFieldsAt(std::string* bytes, uint64_t hub_seq, uint64_t seconds, uint64_t nanos) {
  const size_t ts_len = 1 + VarintSize(seconds) + (nanos ? 1 + VarintSize(nanos) : 0);
  const size_t env_len = 2 + VarintSize(hub_seq) + 2 + VarintSize(ts_len) + ts_len;
  char buffer[kHubFieldsRoom];
  char* p = buffer;
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
  bytes->append(buffer, static_cast<size_t>(p - buffer));
}

v1::Event WithoutHubFields(const v1::Event& event) {
  v1::Event copy = event;
  if (copy.has_envelope()) {
    copy.mutable_envelope()->clear_hub_seq();
    copy.mutable_envelope()->clear_received_at();
  }
  return copy;
}

}  // namespace

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
  AppendHubFieldsAt(bytes, hub_seq, static_cast<uint64_t>(micros / 1'000'000),
                    static_cast<uint64_t>((micros % 1'000'000) * 1000));
}

bool SameEventContent(const v1::Event& a, const v1::Event& b) {
  return CanonicalBytes(WithoutHubFields(a)) == CanonicalBytes(WithoutHubFields(b));
}

std::optional<std::string_view> AcceptedBytes(std::string_view record, const v1::Event& stored) {
  const auto& envelope = stored.envelope();
  std::string suffix;
  AppendHubFieldsAt(&suffix, envelope.hub_seq(),
                    static_cast<uint64_t>(envelope.received_at().seconds()),
                    static_cast<uint64_t>(envelope.received_at().nanos()));
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
  while (value >= 0x80) {
    out->push_back(static_cast<char>(value | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
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
