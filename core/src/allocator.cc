#include "carehub/core/allocator.h"

#include <cstddef>

// jemalloc's control interface, resolved only when the process has jemalloc loaded.
extern "C" int mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen)
    __attribute__((weak));

namespace carehub {
namespace {

template <typename T>
bool ReadControl(const char* name, T* out) {
  size_t size = sizeof(T);
  return mallctl != nullptr && mallctl(name, out, &size, nullptr, 0) == 0 && size == sizeof(T);
}

}  // namespace

std::string AllocatorName() {
  // A process's allocator is fixed when it is loaded: asked once (the hub's metrics ask at every
  // scrape).
  static const std::string name = [] {
    const char* version = nullptr;
    if (ReadControl("version", &version) && version != nullptr) {
      return std::string("jemalloc ") + version;
    }
    return std::string("libc malloc");
  }();
  return name;
}

std::optional<AllocatorFigures> ReadAllocatorFigures() {
  if (mallctl == nullptr) {
    return std::nullopt;
  }
  // jemalloc caches its statistics until the epoch is advanced.
  uint64_t epoch = 1;
  size_t epoch_size = sizeof(epoch);
  if (mallctl("epoch", &epoch, &epoch_size, &epoch, epoch_size) != 0) {
    return std::nullopt;
  }
  size_t allocated = 0, resident = 0;
  if (!ReadControl("stats.allocated", &allocated) || !ReadControl("stats.resident", &resident)) {
    return std::nullopt;
  }
  return AllocatorFigures{allocated, resident};
}

}  // namespace carehub
