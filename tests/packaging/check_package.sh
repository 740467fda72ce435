#!/usr/bin/env bash
# ctest carehub_packaging (label packaging): builds the Debian package from this build tree with
# cpack and checks it the way an operator's machine would see it:
#   1. its contents: the seven binaries (and no other) in /usr/bin, every deploy/systemd unit in
#      /lib/systemd/system (byte-identical), every deploy/config example in /etc/carehub, the docs,
#      copyright and changelog.gz in /usr/share/doc/carehub;
#   2. its control data: name, version, library Depends from dpkg-shlibdeps, conffiles = exactly
#      the files in /etc, maintainer scripts executable and valid sh;
#   3. lintian --fail-on error;
#   4. systemd-analyze verify --root=<the extracted package> on every unit, so each ExecStart=/
#      ExecReload= must name an executable the package (or a package it Depends on) ships at that
#      path. The root holds only the .deb's files, the programs of its non-library Depends (e.g.
#      /bin/kill from procps) and systemd's own units (targets); not this machine's /usr/bin.
# Usage: check_package.sh BUILD_DIR SOURCE_DIR VERSION. Needs the binaries built (`make build`) and
# lintian, dpkg-dev, systemd and procps (scripts/install-deps.sh).
set -euo pipefail

build="$(cd "$1" && pwd)"
src="$(cd "$2" && pwd)"
version="$3"
work="$build/packaging-test"
programs=(carehub carehubctl carehub-adapter carehub-analytics carehub-publish carehub-subscribe
  carehub-sink)

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

for tool in cpack dpkg-deb dpkg-shlibdeps lintian systemd-analyze; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool not installed (scripts/install-deps.sh)"; exit 1; }
done
for program in "${programs[@]}"; do
  [[ -x "$build/bin/$program" ]] || { echo "FAIL: $build/bin/$program not built"; exit 1; }
done

rm -rf "$work"
mkdir -p "$work"

# ---- build the package ----
echo "== cpack -G DEB (log: $work/cpack.log)"
if ! cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/cpack" >"$work/cpack.log" 2>&1; then
  cat "$work/cpack.log"
  echo "FAIL: cpack"
  exit 1
fi
arch="$(dpkg --print-architecture)"
deb="$work/cpack/carehub_${version}_${arch}.deb"
[[ -f "$deb" ]] || { ls -l "$work/cpack"; echo "FAIL: no $deb"; exit 1; }
ok "built $(basename "$deb")"

# ---- 1. contents ----
dpkg-deb -c "$deb" >"$work/contents.txt"
# "-rwxr-xr-x root/root 123 2024-01-01 00:00 ./usr/bin/carehub" -> "-rwxr-xr-x usr/bin/carehub"
awk '{ p = $6; sub(/^\.\//, "", p); sub(/\/$/, "", p); if (p != "") print $1, p }' "$work/contents.txt" \
  >"$work/files.txt"
has_file() {  # has_file PATH [MODE]
  local line
  line="$(awk -v p="$1" '$2 == p' "$work/files.txt")"
  if [[ -z "$line" ]]; then fail "package lacks /$1"; return; fi
  if [[ $# -gt 1 && "${line%% *}" != "$2" ]]; then fail "/$1 has mode ${line%% *}, want $2"; return; fi
  ok "ships /$1${2:+ ($2)}"
}
for program in "${programs[@]}"; do has_file "usr/bin/$program" -rwxr-xr-x; done
shipped_programs="$(awk '$2 ~ /^usr\/bin\/./ { sub(/^usr\/bin\//, "", $2); print $2 }' "$work/files.txt" | sort)"
if [[ "$shipped_programs" != "$(printf '%s\n' "${programs[@]}" | sort)" ]]; then
  fail "/usr/bin holds $(echo "$shipped_programs" | tr '\n' ' '), want exactly ${programs[*]}"
fi
units=()
for unit_file in "$src"/deploy/systemd/*.service; do
  unit="$(basename "$unit_file")"
  units+=("$unit")
  has_file "lib/systemd/system/$unit" -rw-r--r--
done
((${#units[@]} >= 4)) || fail "only ${#units[@]} units in deploy/systemd"
for config in "$src"/deploy/config/*.yaml; do has_file "etc/carehub/$(basename "$config")" -rw-r--r--; done
for doc in README.md operations.md security.md copyright changelog.gz; do
  has_file "usr/share/doc/carehub/$doc" -rw-r--r--
done

root="$work/root"
dpkg-deb -x "$deb" "$root"
for unit in "${units[@]}"; do
  cmp -s "$src/deploy/systemd/$unit" "$root/lib/systemd/system/$unit" \
    || fail "packaged $unit differs from deploy/systemd/$unit"
done

# The daemon and the long-running consumers of the client library run on jemalloc (the top-level
# CMakeLists.txt, carehub_allocator; docs/performance.md): each must name it in its dynamic section.
for program in carehub carehub-sink carehub-subscribe; do
  if readelf -d "$root/usr/bin/$program" | grep -q 'NEEDED.*libjemalloc'; then
    ok "/usr/bin/$program links jemalloc"
  else
    fail "/usr/bin/$program does not link jemalloc"
  fi
done

# ---- 2. control data ----
dpkg-deb -e "$deb" "$work/control"
field() { dpkg-deb -f "$deb" "$1"; }
[[ "$(field Package)" == carehub ]] || fail "Package: $(field Package)"
[[ "$(field Version)" == "$version" ]] || fail "Version: $(field Version), want $version"
depends="$(field Depends)"
for dep in adduser procps libzmq5 librocksdb libprotobuf libsodium libjemalloc2; do
  [[ "$depends" == *"$dep"* ]] || fail "Depends lacks $dep (dpkg-shlibdeps or CPACK_DEBIAN_PACKAGE_DEPENDS): $depends"
done
ok "Depends: $depends"
etc_files="$(awk '$1 ~ /^-/ && $2 ~ /^etc\// { print "/" $2 }' "$work/files.txt" | sort)"
if [[ "$(sort "$work/control/conffiles")" != "$etc_files" ]]; then
  fail "conffiles ($(sort "$work/control/conffiles" | tr '\n' ' ')) != files in /etc ($(echo "$etc_files" | tr '\n' ' '))"
else
  ok "conffiles list every file in /etc: $(echo "$etc_files" | tr '\n' ' ')"
fi
for script in postinst prerm postrm; do
  if [[ ! -x "$work/control/$script" ]]; then fail "control $script missing or not executable"; continue; fi
  sh -n "$work/control/$script" || fail "$script: sh syntax error"
done

# ---- 3. lintian ----
echo "== lintian --fail-on error"
lintian_rc=0
lintian --fail-on error "$deb" >"$work/lintian.txt" 2>&1 || lintian_rc=$?
cat "$work/lintian.txt"
if ((lintian_rc != 0)) || grep -q '^E: ' "$work/lintian.txt"; then
  fail "lintian reports errors (exit $lintian_rc)"
else
  ok "lintian: no errors ($(grep -c '^W: ' "$work/lintian.txt" || true) warnings)"
fi

# ---- 4. systemd-analyze verify against the package's layout ----
# The programs of the package's non-library Depends: a unit may run those (ExecReload=/bin/kill).
deps="$(echo "$depends" | tr ',' '\n' | sed -E 's/^ *([a-z0-9.+-]+).*/\1/' | grep -v '^lib' || true)"
for dep in $deps; do
  dpkg-query -W "$dep" >/dev/null 2>&1 || { fail "Depends $dep is not installed here"; continue; }
  dpkg -L "$dep" | grep -E '^/(usr/)?s?bin/[^/]+$' | while read -r program; do
    if [[ -f "$program" && -x "$program" ]]; then
      mkdir -p "$root$(dirname "$program")"
      cp -L "$program" "$root$program"
    fi
  done
done
# systemd's own units (sysinit.target, network-online.target, ...), never a carehub unit of this
# machine's: the package's own units in /lib/systemd/system must be the ones verified.
mkdir -p "$root/usr/lib/systemd/system"
cp -a "$(readlink -f /usr/lib/systemd/system)/." "$root/usr/lib/systemd/system/"
rm -f "$root"/usr/lib/systemd/system/carehub*
for unit in "${units[@]}"; do
  verify_rc=0
  out="$(systemd-analyze verify --root="$root" "$unit" 2>&1)" || verify_rc=$?
  if ((verify_rc != 0)) || [[ -n "$out" ]]; then
    echo "$out"
    fail "systemd-analyze verify --root=<package> $unit (exit $verify_rc)"
  else
    ok "systemd-analyze verify $unit: every command it runs is in the package's layout"
  fi
done

echo "packaging: $failures failure(s)"
((failures == 0))
