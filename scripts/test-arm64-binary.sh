#!/usr/bin/env bash
# test-arm64-binary.sh ARM64_BIN ARM64_LIB HOST_BIN HOST_LIB: the linux/arm64 build of blip2chat, run under
# qemu-user, checks its llama.cpp library (doctor) and answers a question about an image (ask) on a golden
# model converted by the host's build. `make test` runs it (make test-linux-arm64-binary).
#
# Needs qemu-aarch64-static (Debian: qemu-user-static) and the arm64 runtime libraries the binary and llama.cpp
# load (libc6-arm64-cross, libstdc++6-arm64-cross, libgcc-s1-arm64-cross) under $QEMU_LD_PREFIX
# (default /usr/aarch64-linux-gnu). Without them it says so and passes, unless BLIP2CHAT_REQUIRE_QEMU=1 (CI).
set -euo pipefail

prog=test-arm64-binary
die() { echo "$prog: FAIL: $*" >&2; exit 1; }
[ "$#" -eq 4 ] || { echo "usage: scripts/test-arm64-binary.sh ARM64_BIN ARM64_LIB HOST_BIN HOST_LIB" >&2; exit 2; }
arm_bin=$1 arm_lib=$2 host_bin=$3 host_lib=$4
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

export QEMU_LD_PREFIX=${QEMU_LD_PREFIX:-/usr/aarch64-linux-gnu}
export QEMU_CPU=${QEMU_CPU:-max}
skip() {
	if [ -n "${BLIP2CHAT_REQUIRE_QEMU:-}" ]; then
		die "$* (BLIP2CHAT_REQUIRE_QEMU is set)"
	fi
	echo "$prog: skipped: $*"
	exit 0
}
command -v qemu-aarch64-static >/dev/null || skip "qemu-aarch64-static is not installed (apt-get install qemu-user-static)"
for f in ld-linux-aarch64.so.1 libc.so.6 libstdc++.so.6 libgcc_s.so.1; do
	[ -e "$QEMU_LD_PREFIX/lib/$f" ] ||
		skip "no $QEMU_LD_PREFIX/lib/$f (apt-get install libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross)"
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
model=$tmp/blip2-llama
"$host_bin" convert "$repo/testdata/golden/blip2-llama/hf" -o "$model" --llama-lib "$host_lib" >"$tmp/convert.log" 2>&1 ||
	die "converting the golden model: $(cat "$tmp/convert.log")"

start=$SECONDS
qemu-aarch64-static "$arm_bin" doctor --llama-lib "$arm_lib" -m "$model" >"$tmp/doctor.out" 2>"$tmp/doctor.err" ||
	die "doctor exited $?: $(cat "$tmp/doctor.err")"
sed "s/^/  | /" "$tmp/doctor.out"
grep -q "^go .* linux/arm64$" "$tmp/doctor.out" || die "doctor does not report linux/arm64"
grep -q "^  build      cpu, @node-llama-cpp/linux-arm64@" "$tmp/doctor.out" || die "doctor does not report the linux-arm64 build, checked"
grep -q "^  check .* load and belong together$" "$tmp/doctor.out" || die "doctor does not load the model"

question="what is in the picture?"
img=$repo/testdata/golden/images/cat.jpg
qemu-aarch64-static "$arm_bin" ask -m "$model" --llama-lib "$arm_lib" --greedy --max-tokens 8 "$img" "$question" \
	>"$tmp/ask.out" 2>"$tmp/ask.err" || die "ask exited $?: $(cat "$tmp/ask.err")"
[ -s "$tmp/ask.out" ] || die "ask printed no answer"
[ ! -s "$tmp/ask.err" ] || die "ask wrote to stderr: $(cat "$tmp/ask.err")"
"$host_bin" ask -m "$model" --llama-lib "$host_lib" --greedy --max-tokens 8 "$img" "$question" >"$tmp/host.out"
# Both answer; the words may differ, as the two machines' kernels round differently on this random model.
same=differs
cmp -s "$tmp/ask.out" "$tmp/host.out" && same="is the same"
echo "$prog: linux/arm64 under qemu: doctor and ask passed in $((SECONDS - start)) s; the answer $same as linux/amd64's"
