#pragma once
// Crash points: named places in the hub's data path where a test can make the process die at once,
// to prove what a crash at exactly that place leaves behind (tests/integration/reliability_crash_*).
//
//   CAREHUB_CRASH_AT=<name>:<n>   the n-th pass (1-based) through CAREHUB_CRASH_POINT("<name>")
//                                 raises SIGKILL on the process itself: no flush, no destructors,
//                                 no answer sent, exactly as `kill -9` at that instruction.
//
// The variable is read once, when the program starts. Unset, a crash point costs one relaxed load
// of a bool. Armed, the program writes one warning line to stderr at start and nothing else.
// Thread-safe: passes from several threads are counted together.

#include <atomic>
#include <string_view>

namespace carehub::crash_points {

// True when CAREHUB_CRASH_AT named a valid point at start.
extern std::atomic<bool> g_armed;

// The slow path: counts a pass through `name` and dies on the armed one.
void Pass(std::string_view name);

// The armed point's name ("" when unarmed), for the startup warning and tests.
std::string_view ArmedName();

}  // namespace carehub::crash_points

#define CAREHUB_CRASH_POINT(name)                                           \
  do {                                                                      \
    if (::carehub::crash_points::g_armed.load(std::memory_order_relaxed)) { \
      ::carehub::crash_points::Pass(name);                                  \
    }                                                                       \
  } while (false)
