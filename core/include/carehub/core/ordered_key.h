#pragma once
// Fixed-width big-endian u64 keys: they sort in numeric order in RocksDB, which is what the event
// log, outboxes, quarantine and cursors rely on.

#include <cstdint>
#include <string>
#include <string_view>

namespace carehub {

inline std::string EncodeOrderedU64(uint64_t value) {
  std::string s(8, '\0');
  for (int i = 7; i >= 0; --i) {
    s[i] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
  return s;
}

// Reads the first 8 bytes (fewer if the input is shorter).
inline uint64_t DecodeOrderedU64(std::string_view bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < bytes.size(); ++i) {
    v = (v << 8) | static_cast<uint8_t>(bytes[i]);
  }
  return v;
}

}  // namespace carehub
