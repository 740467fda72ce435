#pragma once
// Fixed loopback ports for tests whose processes must keep their ports across restarts (the demo,
// the soak), where port 0 will not do.

#include <cstdint>
#include <optional>
#include <vector>

namespace carehub::itest {

// True when a TCP socket can bind 127.0.0.1:port right now.
bool LoopbackPortFree(int port);

// A base port in [20000, 32000) such that base + offset is free for every offset (offsets < 100).
// The range lies below the kernel's ephemeral range (32768+), where port-0 binds and outgoing
// connections of parallel tests land. Bases are tried in an order derived from `salt` and the pid,
// so parallel tests start in different places. Empty when no base is free.
std::optional<int> FindFreePortBase(const std::vector<int>& offsets, uint64_t salt);

}  // namespace carehub::itest
