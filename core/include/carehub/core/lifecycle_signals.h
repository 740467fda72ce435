#pragma once
// How every carehub daemon handles its lifecycle signals: SIGTERM and SIGINT stop it, SIGHUP asks it
// to reload. The signals are blocked in all threads (block before starting any) and taken
// synchronously with sigwait(), so no handler runs on an arbitrary thread.

#include <pthread.h>
#include <signal.h>

#include <functional>

namespace carehub {

inline sigset_t LifecycleSignalSet() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}

// Call in main() before starting threads, so every thread inherits the mask. Also ignores SIGPIPE
// (a peer closing a socket must not kill the process).
inline void BlockLifecycleSignals() {
  sigset_t set = LifecycleSignalSet();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

// Blocks until SIGTERM or SIGINT and returns it; each SIGHUP in between calls `on_reload`.
inline int WaitForStopSignal(const std::function<void()>& on_reload) {
  sigset_t set = LifecycleSignalSet();
  while (true) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) {
      continue;
    }
    if (sig == SIGHUP) {
      on_reload();
      continue;
    }
    return sig;
  }
}

}  // namespace carehub
