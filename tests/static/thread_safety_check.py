#!/usr/bin/env python3
"""Clang thread-safety analysis over every project source that locks a carehub::Mutex (issue 17).

GCC, which builds the project, ignores the CAREHUB_GUARDED_BY / CAREHUB_REQUIRES annotations
(carehub/core/thread_annotations.h); clang checks them. This runs `clang++ -fsyntax-only` with the
build's own flags (read from compile_commands.json: the same include paths, defines and -std) plus
-Wthread-safety, and fails when clang reports a thread-safety error, e.g. a guarded member touched
without its lock.

Which sources: every project .cc in compile_commands.json (generated code and anything outside
the source tree excluded) that locks a carehub::Mutex or carries a thread annotation itself
(MutexLock, CondVar, Lock()/Unlock(), CAREHUB_*), plus each foo.cc whose own header foo.h does
(it implements the class whose members are guarded). Inline locking code in a header is checked
in every chosen source that includes it (policy_holder.h through hub.cc, identities.h through
identities.cc). Sources that merely include such a header (every user of metrics::Registry) are
not re-checked: they cannot touch the private guarded members.

  thread_safety_check.py --compile-commands build/compile_commands.json --source-dir . \
      --clang /usr/bin/clang++ [--list]
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys

# Flags GCC accepts and clang does not; dropped from the build's command lines. (None are in use
# today; listed so a future GCC-only flag fails loudly here only if it is not filtered.)
GCC_ONLY_PREFIXES = (
    "-fconcepts-diagnostics-depth",
    "-fno-fat-lto-objects",
    "-Wno-maybe-uninitialized",
    "-Wduplicated-",
    "-Wlogical-op",
    "-Wuseless-cast",
)

# The analysis: -Wthread-safety is attributes, analysis, precise and reference checks.
# -Wthread-safety-beta is left out: clang 14's beta checks are not part of the contract.
# -Wno-error first so that only thread-safety findings fail this test: other clang-only warnings
# are still printed, but they belong to the -Werror build (issue 17), not to this check.
THREAD_SAFETY_FLAGS = ["-fsyntax-only", "-Wthread-safety", "-Wno-error", "-Werror=thread-safety"]

USES_MUTEX = re.compile(r"\b(carehub::Mutex|MutexLock|CondVar|CAREHUB_(GUARDED_BY|PT_GUARDED_BY|"
                        r"REQUIRES|EXCLUDES|ACQUIRE|RELEASE))\b|\bMutex\s+\w+;|"
                        r"\.(Lock|Unlock)\(\)")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


def project_file(path, source_dir, build_dir):
    path = os.path.realpath(path)
    return path.startswith(source_dir + os.sep) and not path.startswith(build_dir + os.sep)


def include_dirs(argv):
    dirs = []
    for i, arg in enumerate(argv):
        if arg in ("-I", "-iquote", "-isystem") and i + 1 < len(argv):
            dirs.append(argv[i + 1])
        elif arg.startswith("-I") and len(arg) > 2:
            dirs.append(arg[2:])
    return dirs


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def uses_mutex(path, dirs):
    """True when `path`, or its own header (foo.cc -> an included .../foo.h), uses carehub::Mutex."""
    text = read(path)
    if USES_MUTEX.search(text):
        return True
    stem = os.path.splitext(os.path.basename(path))[0]
    for name in INCLUDE.findall(text):
        if os.path.splitext(os.path.basename(name))[0] != stem:
            continue
        for base in [os.path.dirname(path)] + dirs:
            candidate = os.path.join(base, name)
            if os.path.isfile(candidate):
                if USES_MUTEX.search(read(candidate)):
                    return True
                break
    return False


def clang_command(entry, clang):
    argv = entry["arguments"] if "arguments" in entry else shlex.split(entry["command"])
    out = [clang]
    skip = False
    for arg in argv[1:]:
        if skip:
            skip = False
            continue
        if arg in ("-o", "-MF", "-MT", "-MQ"):
            skip = True
            continue
        if arg in ("-c", "-MD", "-MMD") or arg == entry["file"]:
            continue
        if arg.startswith(GCC_ONLY_PREFIXES):
            continue
        out.append(arg)
    return out + THREAD_SAFETY_FLAGS + [entry["file"]]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compile-commands", required=True)
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--clang", default="clang++")
    parser.add_argument("--list", action="store_true", help="only list the sources checked")
    args = parser.parse_args()

    source_dir = os.path.realpath(args.source_dir)
    build_dir = os.path.realpath(os.path.dirname(args.compile_commands))
    try:
        with open(args.compile_commands, encoding="utf-8") as f:
            entries = json.load(f)
    except OSError as e:
        print(f"thread-safety check: cannot read {args.compile_commands} ({e}); build first")
        return 1

    chosen = {}
    for entry in entries:
        path = os.path.realpath(os.path.join(entry["directory"], entry["file"]))
        if path in chosen or not path.endswith(".cc"):
            continue
        if not project_file(path, source_dir, build_dir):
            continue
        argv = entry["arguments"] if "arguments" in entry else shlex.split(entry["command"])
        dirs = [os.path.join(entry["directory"], d) for d in include_dirs(argv)]
        if uses_mutex(path, dirs):
            chosen[path] = entry

    if not chosen:
        print("thread-safety check: no source uses carehub::Mutex; the check would prove nothing")
        return 1
    if args.list:
        for path in sorted(chosen):
            print(os.path.relpath(path, source_dir))
        return 0

    failed = []
    for path in sorted(chosen):
        entry = chosen[path]
        cmd = clang_command(entry, args.clang)
        try:
            result = subprocess.run(cmd, cwd=entry["directory"], capture_output=True, text=True)
        except FileNotFoundError:
            print(f"thread-safety check: {args.clang} not found (scripts/install-deps.sh installs "
                  "clang)")
            return 1
        rel = os.path.relpath(path, source_dir)
        if result.returncode != 0:
            failed.append(rel)
            print(f"FAIL {rel}\n{result.stderr}")
        else:
            print(f"ok   {rel}")
            if result.stderr.strip():
                print(result.stderr)
    print(f"thread-safety check: {len(chosen) - len(failed)}/{len(chosen)} sources clean")
    if failed:
        print("failed: " + " ".join(failed))
        print("re-run one: " + shlex.join(clang_command(chosen[os.path.join(source_dir, failed[0])],
                                                        args.clang)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
