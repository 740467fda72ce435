#include "harness/ports.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace carehub::itest {

bool LoopbackPortFree(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    return false;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool free = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return free;
}

std::optional<int> FindFreePortBase(const std::vector<int>& offsets, uint64_t salt) {
  constexpr int kFirstBase = 20'000;
  constexpr int kSlots = 120;  // bases 20000 .. 31900, step 100
  const uint64_t mixed = (salt ^ (static_cast<uint64_t>(getpid()) << 20)) * 0x9e3779b97f4a7c15ULL;
  const int first = static_cast<int>((mixed >> 32) % kSlots);
  for (int i = 0; i < kSlots; ++i) {
    const int base = kFirstBase + ((first + i) % kSlots) * 100;
    bool all_free = true;
    for (int offset : offsets) {
      if (!LoopbackPortFree(base + offset)) {
        all_free = false;
        break;
      }
    }
    if (all_free) {
      return base;
    }
  }
  return std::nullopt;
}

}  // namespace carehub::itest
