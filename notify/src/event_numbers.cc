#include "carehub/notify/event_numbers.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace carehub::notify {
namespace {

constexpr size_t kRecordBytes = 16;
constexpr uint64_t kCheckMask = 0xca7e4ab0f41e5eedULL;

void PutLe(uint64_t v, unsigned char* out) {
  for (int i = 0; i < 8; ++i) {
    out[i] = static_cast<unsigned char>(v >> (8 * i));
  }
}

uint64_t GetLe(const unsigned char* in) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) {
    v = (v << 8) | in[i];
  }
  return v;
}

Status Io(const std::string& what) {
  return Status::Error("io_error", what + ": " + std::strerror(errno));
}

// Reads record `index` (0-based) into *hub_seq; false when its check does not match.
Result<bool> ReadRecord(int fd, uint64_t index, uint64_t* hub_seq) {
  unsigned char buf[kRecordBytes];
  ssize_t n = pread(fd, buf, kRecordBytes, static_cast<off_t>(index * kRecordBytes));
  if (n != static_cast<ssize_t>(kRecordBytes)) {
    return n < 0 ? Io("cannot read event-number record")
                 : Status::Error("io_error", "short read of an event-number record");
  }
  *hub_seq = GetLe(buf);
  return GetLe(buf + 8) == (*hub_seq ^ kCheckMask);
}

}  // namespace

EventNumbers::EventNumbers(int fd, uint64_t count, uint64_t last)
    : fd_(fd), count_(count), last_hub_seq_(last) {}

EventNumbers::~EventNumbers() { close(fd_); }

Result<std::unique_ptr<EventNumbers>> EventNumbers::Open(const std::filesystem::path& path) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    return Io("cannot open " + path.string());
  }
  off_t size = lseek(fd, 0, SEEK_END);
  if (size < 0) {
    close(fd);
    return Io("cannot size " + path.string());
  }
  uint64_t count = static_cast<uint64_t>(size) / kRecordBytes;
  // A crash mid-append leaves a partial record, or a whole record whose bytes did not all reach
  // the disk: only the last one can be such, since each Append ends with fdatasync.
  uint64_t last = 0;
  if (count > 0) {
    uint64_t seq = 0;
    auto ok = ReadRecord(fd, count - 1, &seq);
    if (!ok.ok()) {
      close(fd);
      return ok.status();
    }
    if (!ok.value()) {
      --count;
    }
  }
  // Every remaining record must check and increase: a file that fails this was damaged in a way
  // a crash cannot explain, and renumbering from it would break the receivers' gap detection.
  uint64_t prev = 0;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t seq = 0;
    auto ok = ReadRecord(fd, i, &seq);
    if (!ok.ok()) {
      close(fd);
      return ok.status();
    }
    if (!ok.value() || seq <= prev) {
      close(fd);
      return Status::Error("corrupt", path.string() + ": record " + std::to_string(i + 1) +
                                          " is damaged; refusing to renumber the feed");
    }
    prev = seq;
  }
  last = prev;
  if (static_cast<uint64_t>(size) != count * kRecordBytes) {
    if (ftruncate(fd, static_cast<off_t>(count * kRecordBytes)) != 0 || fdatasync(fd) != 0) {
      close(fd);
      return Io("cannot cut the torn tail of " + path.string());
    }
  }
  return std::unique_ptr<EventNumbers>(new EventNumbers(fd, count, last));
}

Result<uint64_t> EventNumbers::Append(const std::vector<uint64_t>& hub_seqs) {
  const uint64_t first = Count() + 1;
  if (hub_seqs.empty()) {
    return first;
  }
  std::vector<unsigned char> buf(hub_seqs.size() * kRecordBytes);
  uint64_t prev = LastHubSeq();
  for (size_t i = 0; i < hub_seqs.size(); ++i) {
    if (hub_seqs[i] <= prev) {
      return Status::Error(kInternalErrorCode, "event-number hub_seqs must increase");
    }
    prev = hub_seqs[i];
    PutLe(hub_seqs[i], &buf[i * kRecordBytes]);
    PutLe(hub_seqs[i] ^ kCheckMask, &buf[i * kRecordBytes + 8]);
  }
  size_t off = 0;
  const off_t base = static_cast<off_t>(Count() * kRecordBytes);
  while (off < buf.size()) {
    ssize_t n = pwrite(fd_, buf.data() + off, buf.size() - off, base + static_cast<off_t>(off));
    if (n <= 0) {
      return Io("cannot append event numbers");
    }
    off += static_cast<size_t>(n);
  }
  if (fdatasync(fd_) != 0) {
    return Io("cannot sync event numbers");
  }
  last_hub_seq_.store(prev, std::memory_order_release);
  count_.store(Count() + hub_seqs.size(), std::memory_order_release);
  return first;
}

Result<uint64_t> EventNumbers::HubSeqOf(uint64_t number) const {
  if (number == 0 || number > Count()) {
    return Status::Error("out_of_range", "event number " + std::to_string(number) +
                                             " has not been given (1.." + std::to_string(Count()) +
                                             ")");
  }
  uint64_t seq = 0;
  auto ok = ReadRecord(fd_, number - 1, &seq);
  if (!ok.ok()) {
    return ok.status();
  }
  if (!ok.value()) {
    return Status::Error("corrupt",
                         "event-number record " + std::to_string(number) + " is damaged");
  }
  return seq;
}

Result<uint64_t> EventNumbers::FirstNumberAfter(uint64_t hub_seq) const {
  uint64_t lo = 1, hi = Count() + 1;  // answer in [lo, hi]
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    auto seq = HubSeqOf(mid);
    if (!seq.ok()) {
      return seq.status();
    }
    if (seq.value() > hub_seq) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

Result<std::optional<uint64_t>> EventNumbers::NumberOf(uint64_t hub_seq) const {
  auto after = FirstNumberAfter(hub_seq);
  if (!after.ok()) {
    return after.status();
  }
  const uint64_t candidate = after.value() - 1;
  if (candidate == 0) {
    return std::optional<uint64_t>();
  }
  auto seq = HubSeqOf(candidate);
  if (!seq.ok()) {
    return seq.status();
  }
  return seq.value() == hub_seq ? std::optional<uint64_t>(candidate) : std::optional<uint64_t>();
}

}  // namespace carehub::notify
