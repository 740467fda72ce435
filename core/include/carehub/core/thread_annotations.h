#pragma once
// Clang thread-safety analysis attributes (https://clang.llvm.org/docs/ThreadSafetyAnalysis.html),
// after abseil's thread_annotations.h. They turn the prose "guarded by mu_" and "called with mu_
// held" into facts clang checks under -Wthread-safety (the ctest `ThreadSafetyAnalysis`,
// tests/static/). They expand to nothing on compilers without the attributes (GCC), so they cost
// nothing and change no code.
//
// The analysis only sees capabilities it is told about: libstdc++'s std::mutex carries no
// attributes, so project code locks carehub::Mutex (carehub/core/mutex.h) instead.
//
//   CAREHUB_GUARDED_BY(mu)        a member read or written only with `mu` held
//   CAREHUB_PT_GUARDED_BY(mu)     the pointee of a pointer member (not the pointer) needs `mu`
//   CAREHUB_REQUIRES(mu...)       the caller must hold `mu` (a private helper of a locked section)
//   CAREHUB_EXCLUDES(mu...)       the caller must not hold `mu` (the function takes it itself)
//   CAREHUB_ACQUIRE(mu...)        the function takes `mu` (or `this`, with no argument) and keeps
//   it CAREHUB_RELEASE(mu...)        the function releases `mu` (or `this`) CAREHUB_TRY_ACQUIRE(ok,
//   mu)   takes `mu` when it returns `ok` CAREHUB_ASSERT_HELD(mu)       tells the analysis `mu` is
//   held from here on (checked at run time
//                                 by nobody: use only where the lock is held for a reason the
//                                 analysis cannot follow)
//   CAREHUB_CAPABILITY(name)      the class is a lock
//   CAREHUB_SCOPED_CAPABILITY     the class holds a lock for its lifetime (RAII)
//   CAREHUB_NO_THREAD_SAFETY_ANALYSIS(reason)  turns the analysis off for one function; the reason
//                                 is required and says why the function is safe anyway

#if defined(__clang__)
#define CAREHUB_THREAD_ANNOTATION_(x) __attribute__((x))
#else
#define CAREHUB_THREAD_ANNOTATION_(x)
#endif

#define CAREHUB_GUARDED_BY(x) CAREHUB_THREAD_ANNOTATION_(guarded_by(x))
#define CAREHUB_PT_GUARDED_BY(x) CAREHUB_THREAD_ANNOTATION_(pt_guarded_by(x))
#define CAREHUB_REQUIRES(...) CAREHUB_THREAD_ANNOTATION_(requires_capability(__VA_ARGS__))
#define CAREHUB_EXCLUDES(...) CAREHUB_THREAD_ANNOTATION_(locks_excluded(__VA_ARGS__))
#define CAREHUB_ACQUIRE(...) CAREHUB_THREAD_ANNOTATION_(acquire_capability(__VA_ARGS__))
#define CAREHUB_RELEASE(...) CAREHUB_THREAD_ANNOTATION_(release_capability(__VA_ARGS__))
#define CAREHUB_TRY_ACQUIRE(...) CAREHUB_THREAD_ANNOTATION_(try_acquire_capability(__VA_ARGS__))
#define CAREHUB_ASSERT_HELD(x) CAREHUB_THREAD_ANNOTATION_(assert_capability(x))
// On an accessor that returns a capability: callers that lock what it returns hold `x`.
#define CAREHUB_RETURN_CAPABILITY(x) CAREHUB_THREAD_ANNOTATION_(lock_returned(x))
#define CAREHUB_CAPABILITY(x) CAREHUB_THREAD_ANNOTATION_(capability(x))
#define CAREHUB_SCOPED_CAPABILITY CAREHUB_THREAD_ANNOTATION_(scoped_lockable)
// The reason is for the reader (and grep); the attribute does not take it.
#define CAREHUB_NO_THREAD_SAFETY_ANALYSIS(reason) \
  CAREHUB_THREAD_ANNOTATION_(no_thread_safety_analysis)
