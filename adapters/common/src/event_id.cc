#include "carehub/adapters/event_id.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>

namespace carehub::adapters {

std::string Fingerprint(std::string_view bytes) {
  // Not FNV's offset basis 14695981039346656037 but the same digits less the last one, as the
  // adapters have always used: see event_id.h. Do not "fix" it.
  uint64_t hash = 1469598103934665603ULL;
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 1099511628211ULL;  // FNV 64 prime
  }
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

std::string EventIdPart(std::string_view text, size_t max_length) {
  const bool printable =
      std::all_of(text.begin(), text.end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; });
  return printable && text.size() <= max_length ? std::string(text) : "k" + Fingerprint(text);
}

}  // namespace carehub::adapters
