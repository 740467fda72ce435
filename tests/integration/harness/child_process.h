#pragma once
// A child process for integration tests: spawns a real binary with stdout and stderr sent to files,
// signals it, and waits for it with a deadline. The destructor SIGKILLs and reaps a child that is
// still running, so a failed assertion never leaves a daemon behind; and the child gets SIGKILL
// from the kernel if the spawning thread dies (PR_SET_PDEATHSIG), so neither does a crashed test.
// Spawn from a thread that outlives the child (the test's main thread).
//
// In a sanitizer build (`make test-sanitize`) the child inherits ASAN_/UBSAN_/TSAN_OPTIONS, and
// when the child is reaped its stderr (from where it stood at the spawn) is searched for a
// sanitizer report: one found fails the running test with the report, whatever the test thought of
// the child's exit (a killed hub's report would otherwise go unseen).
//
// Not thread-safe: one thread owns a ChildProcess (signalling it from another thread is fine, see
// Signal()).

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "carehub/core/status.h"

namespace carehub::itest {

// How a child ended: exit_code when it exited, term_signal when a signal ended it.
struct ExitStatus {
  std::optional<int> exit_code;
  std::optional<int> term_signal;
  bool Exited(int code) const { return exit_code && *exit_code == code; }
  std::string ToString() const;
};

class ChildProcess {
 public:
  // Starts argv[0] (a path) with argv; stdout and stderr are appended to the given files.
  static Result<ChildProcess> Spawn(const std::vector<std::string>& argv,
                                    const std::filesystem::path& stdout_file,
                                    const std::filesystem::path& stderr_file);

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0 && !exit_; }

  // Sends a signal; safe from any thread while the child is running.
  void Signal(int sig) const;
  // Non-blocking: reaps the child if it has ended.
  std::optional<ExitStatus> Poll();
  // Waits up to Scaled(timeout) for the child to end; empty if it is still running.
  std::optional<ExitStatus> Wait(std::chrono::milliseconds timeout);

 private:
  ChildProcess(pid_t pid, std::filesystem::path stderr_file, uintmax_t stderr_start)
      : pid_(pid), stderr_file_(std::move(stderr_file)), stderr_start_(stderr_start) {}
  void KillAndReap();
  // Called once the child is reaped: fails the running test if its stderr holds a sanitizer report.
  void CheckSanitizerReport() const;

  pid_t pid_ = -1;
  std::optional<ExitStatus> exit_;
  std::filesystem::path stderr_file_;
  // Size of stderr_file_ at the spawn: earlier runs' output (a restarted hub) is not this child's.
  uintmax_t stderr_start_ = 0;
};

// True in sanitizer builds (make test-sanitize): GCC defines these for -fsanitize=address / thread;
// UBSan runs only beside ASan.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitizerBuild = true;
#else
inline constexpr bool kSanitizerBuild = false;
#endif

// The sanitizer report in `text` (from its first line to the end), or "" when there is none.
std::string FindSanitizerReport(const std::string& text);

// `timeout` times CAREHUB_TIME_SCALE (a number >= 1, default 1): sanitizer runs set it because
// everything runs several times slower there. Applied to the harness's waits and deadlines only, so
// it gives slow runs time and never changes what a test checks.
std::chrono::milliseconds Scaled(std::chrono::milliseconds timeout);

// Output of a command run to completion.
struct CommandResult {
  ExitStatus status;
  std::string out;
  std::string err;
};

// Runs argv to completion within `timeout` (killed and reported as an error if it takes longer).
// Output goes through files in `work_dir`, so large outputs never block the child.
Result<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                 const std::filesystem::path& work_dir,
                                 std::chrono::milliseconds timeout);

// Absolute path of a system tool found on $PATH (Spawn and RunCommand do no PATH lookup); the
// name itself when it is not found, so the spawn error names it. A name holding a '/' is a path
// and is returned as it is (execvp's rule).
std::string SystemTool(const std::string& name);

// The whole content of a file ("" when it cannot be read).
std::string ReadFileText(const std::filesystem::path& path);

// A fresh directory under $TMPDIR (or /tmp) named after `tag`; removed by ~TempDir unless the
// environment variable CAREHUB_ITEST_KEEP is set (to inspect a failed run).
class TempDir {
 public:
  explicit TempDir(const std::string& tag);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace carehub::itest
