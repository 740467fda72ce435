#pragma once
// A strict reader of protobuf's wire format, for the readers that take encoded messages apart in
// place instead of parsing them (event_view.h; the hub's frame_decode.h). Strict on purpose: every
// encoding it accepts, protobuf reads to the same values, and whatever it refuses those readers
// leave to protobuf's own parse. So it reads only varint and length-delimited fields (the only
// wire types of carehub's schema), tags and lengths of at most four bytes (protobuf refuses more
// than five), and varints of at most ten bytes whose tenth carries only the value's top bit.
//
// Header-only: it runs for every field of every event on the ingest path. A Reader is a cursor
// over bytes its caller owns; not thread-safe, cheap to copy.

#include <cstdint>
#include <string_view>

namespace carehub::wire {

// Protobuf's wire types (the low three bits of a tag) this reader knows.
inline constexpr uint32_t kVarint = 0;
inline constexpr uint32_t kLengthDelimited = 2;

// Every read fails (returns false) rather than read past the end or accept what protobuf would
// read otherwise.
class Reader {
 public:
  explicit Reader(std::string_view bytes)
      : p_(reinterpret_cast<const uint8_t*>(bytes.data())), end_(p_ + bytes.size()) {}

  bool done() const { return p_ == end_; }

  bool Varint(uint64_t* value) { return VarintOf(10, value); }

  // A tag: field number and wire type; field 0 is not a field.
  bool Tag(uint32_t* field, uint32_t* wire_type) {
    uint64_t tag = 0;
    if (!VarintOf(4, &tag)) {
      return false;
    }
    *field = static_cast<uint32_t>(tag >> 3);
    *wire_type = static_cast<uint32_t>(tag & 7);
    return *field != 0;
  }

  // A length-delimited value: a view of the bytes being read.
  bool Bytes(std::string_view* out) {
    uint64_t length = 0;
    if (!VarintOf(4, &length) || length > static_cast<uint64_t>(end_ - p_)) {
      return false;
    }
    *out = std::string_view(reinterpret_cast<const char*>(p_), length);
    p_ += length;
    return true;
  }

 private:
  // A varint of at most `max_bytes` bytes; of ten, the tenth may only carry the top bit.
  bool VarintOf(int max_bytes, uint64_t* value) {
    // Tags, lengths and most values fit in one byte.
    if (p_ != end_ && *p_ < 0x80) {
      *value = *p_++;
      return true;
    }
    uint64_t v = 0;
    for (int i = 0; i < max_bytes; ++i) {
      if (p_ == end_) {
        return false;
      }
      const uint8_t b = *p_++;
      if (i == 9 && b > 1) {
        return false;
      }
      v |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
      if (b < 0x80) {
        *value = v;
        return true;
      }
    }
    return false;
  }

  const uint8_t* p_;
  const uint8_t* end_;
};

// One field: its number, wire type and value (`varint` or `bytes`, by wire type).
struct Field {
  uint32_t number = 0;
  uint32_t wire_type = 0;
  uint64_t varint = 0;
  std::string_view bytes;

  bool Is(uint32_t n, uint32_t type) const { return number == n && wire_type == type; }
};

inline bool NextField(Reader* in, Field* f) {
  if (!in->Tag(&f->number, &f->wire_type)) {
    return false;
  }
  switch (f->wire_type) {
    case kVarint:
      return in->Varint(&f->varint);
    case kLengthDelimited:
      return in->Bytes(&f->bytes);
    default:
      return false;  // fixed-width and group fields: protobuf's to read
  }
}

// Calls `on_field(const Field&)` with each field of the message encoded in `bytes`, in order;
// false when the bytes do not read as a message or `on_field` returns false.
template <typename OnField>
bool ForEachField(std::string_view bytes, OnField&& on_field) {
  Reader in(bytes);
  Field f;
  while (!in.done()) {
    if (!NextField(&in, &f) || !on_field(static_cast<const Field&>(f))) {
      return false;
    }
  }
  return true;
}

}  // namespace carehub::wire
