#include "carehub/core/crash_points.h"

#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace carehub::crash_points {
namespace {

struct Armed {
  std::string name;
  uint64_t pass = 0;  // 1-based pass that dies
};

// Parsed before main() (dynamic initialisation of g_armed below), so the first pass through any
// point already sees it; the crash points only run from threads the hub starts later.
Armed& ArmedPoint() {
  static Armed armed;
  return armed;
}

std::atomic<uint64_t> g_passes{0};

bool ParseEnvironment() {
  const char* spec = std::getenv("CAREHUB_CRASH_AT");
  if (spec == nullptr || *spec == '\0') {
    return false;
  }
  std::string text(spec);
  size_t colon = text.rfind(':');
  uint64_t pass = 1;
  std::string name = text;
  if (colon != std::string::npos) {
    name = text.substr(0, colon);
    char* end = nullptr;
    unsigned long long n = std::strtoull(text.c_str() + colon + 1, &end, 10);
    if (end == nullptr || *end != '\0' || n == 0) {
      std::fprintf(stderr, "warning: CAREHUB_CRASH_AT=%s ignored: expected <name>:<n>, n >= 1\n",
                   spec);
      return false;
    }
    pass = n;
  }
  if (name.empty()) {
    std::fprintf(stderr, "warning: CAREHUB_CRASH_AT=%s ignored: no crash point named\n", spec);
    return false;
  }
  ArmedPoint().name = name;
  ArmedPoint().pass = pass;
  std::fprintf(stderr,
               "warning: CAREHUB_CRASH_AT is set: this process kills itself (SIGKILL) on pass %llu "
               "through crash point %s\n",
               static_cast<unsigned long long>(pass), name.c_str());
  return true;
}

}  // namespace

std::atomic<bool> g_armed{ParseEnvironment()};

void Pass(std::string_view name) {
  const Armed& armed = ArmedPoint();
  if (name != armed.name) {
    return;
  }
  if (g_passes.fetch_add(1) + 1 == armed.pass) {
    // SIGKILL cannot be caught: nothing after this line runs, in any thread.
    ::kill(::getpid(), SIGKILL);
    ::pause();
  }
}

std::string_view ArmedName() { return ArmedPoint().name; }

}  // namespace carehub::crash_points
