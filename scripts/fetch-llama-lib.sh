#!/usr/bin/env bash
# fetch-llama-lib.sh [--platform P] [--variant V] [DEST]: put llama.cpp's prebuilt shared library (v0.4.0) into
# DEST (default: lib/ at the repo root).
#
#   --platform P  linux-x64, linux-arm64, mac-arm64 or win-x64 (default: this machine; $LLAMA_PLATFORM), or a
#                 package name such as linux-x64-cuda; a library for another platform is for tests and packaging
#   --variant V   cpu, cuda, vulkan or metal (default: cpu, metal on macOS; $LLAMA_VARIANT). A GPU build holds
#                 the CPU backends too and runs on the CPU when it finds no GPU.
#
# The library comes from node-llama-cpp's per-platform npm package, fetched with `npm pack` (a plain tarball
# download: no package code runs) and checked against the registry integrity pinned below before anything is
# unpacked. The tarball is kept in .cache/npm/ so later runs work offline. DEST gets a stamp file listing the
# size and sha256 of every unpacked file: blip2chat checks the files against it before loading them, and a
# second run of this script is a no-op only while they still match (so it also repairs a damaged copy). Only
# the shared libraries are unpacked, not the node addon.
set -euo pipefail

prog=fetch-llama-lib
die() { echo "$prog: $*" >&2; exit 1; }
usage() { die "usage: scripts/fetch-llama-lib.sh [--platform linux-x64|linux-arm64|mac-arm64|win-x64] [--variant cpu|cuda|vulkan|metal] [DEST]"; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
platform=${LLAMA_PLATFORM:-}
variant=${LLAMA_VARIANT:-}
dest=""
while [ "$#" -gt 0 ]; do
	case "$1" in
	--platform) [ "$#" -ge 2 ] || usage; platform=$2; shift 2 ;;
	--platform=*) platform=${1#*=}; shift ;;
	--variant) [ "$#" -ge 2 ] || usage; variant=$2; shift 2 ;;
	--variant=*) variant=${1#*=}; shift ;;
	-h | --help) usage ;;
	-*) usage ;;
	*) [ -z "$dest" ] || usage; dest=$1; shift ;;
	esac
done
dest=${dest:-$repo/lib}
# Git Bash and MSYS2 on Windows: accept C:\like\this for DEST.
if command -v cygpath >/dev/null 2>&1; then
	dest=$(cygpath -u "$dest")
fi

if [ -z "$platform" ]; then
	os=$(uname -s)
	arch=$(uname -m)
	case "$os/$arch" in
	Linux/x86_64 | Linux/amd64) platform=linux-x64 ;;
	Linux/aarch64 | Linux/arm64) platform=linux-arm64 ;;
	Darwin/arm64) platform=mac-arm64 ;;
	MINGW*/x86_64 | MSYS*/x86_64 | CYGWIN*/x86_64) platform=win-x64 ;;
	*)
		die "no prebuilt llama.cpp library for $os/$arch (there are: Linux x86_64 and arm64, macOS arm64, Windows x64); build llama.cpp v0.4.0 as shared libraries yourself and pass its folder with --llama-lib or \$BLIP2CHAT_LLAMA_LIB"
		;;
	esac
fi
# A full package name carries its variant.
case "$platform" in
*-cuda | *-vulkan | *-metal)
	v=${platform##*-}
	[ -z "$variant" ] || [ "$variant" = "$v" ] || die "--platform $platform and --variant $variant disagree"
	variant=$v
	platform=${platform%-*}
	;;
esac
case "$platform" in
mac-arm64)
	case "${variant:-metal}" in
	metal) ;;
	cpu) echo "$prog: macOS has one build, with Metal; 'blip2chat --gpu-layers 0' keeps the language model on the CPU" >&2 ;;
	*) die "no $variant build for macOS: it has the Metal build (--variant metal, the default)" ;;
	esac
	variant=metal
	;;
*) variant=${variant:-cpu} ;;
esac

# The packages, each with the integrity the registry lists for it (npm view PKG@3.21.1 dist.integrity) and the
# name of its llama library. Keep in step with engine/llamacpp/internal/libfiles.
version=3.21.1
release=0.4.0
case "$platform/$variant" in
linux-x64/cpu) pkg=linux-x64 integrity='sha512-Totj6RTDMGo3FoK2yNUaz/oGmZD0olAqTrRluFUWmu0kW2i9TOzHSW0OWCAiGkzRCVX0WsU2CyUQo/W2NYtdPA==' ;;
linux-x64/cuda) pkg=linux-x64-cuda integrity='sha512-idsE55VoD/FbvLhnBC9krUJaUoC0XnebseAAnCpm/brKf61HEbu+idgbb5eN6mxkjLSrHtILprJ0nDcUJjVrFg==' ;;
linux-x64/vulkan) pkg=linux-x64-vulkan integrity='sha512-flEeSzONQ6OIm5bYKLQf4eEnBzcC5WugFbyPUwkCqyyOFZ8pH0H9ulQ7ZNDLSIczeKneMRJornlyY1Hq7d3GDA==' ;;
linux-arm64/cpu) pkg=linux-arm64 integrity='sha512-eI3anSEGzJiwF2rpMpZVTdHzw47LztbvfvuRzlu/fPO18ROnBOd+75RPUBlV6qENPpmNtbov85+3VODwEwBurg==' ;;
mac-arm64/metal) pkg=mac-arm64-metal integrity='sha512-6MIDAZV7DXD9R1+jEXWJkFuolni3GATGE6mmuyFYc6ZmtOh9djAy15df0T0AXK3sCmVKL+fQcOAWZezxx4MvQQ==' ;;
win-x64/cpu) pkg=win-x64 integrity='sha512-JcIpCnra7bAd7JNWA8ehdn2DIRaTMuj+fBC8bw+5rKSNzszWFbuj2XA05c5QHovonDMBLN1ePXE/hcfZtzXoUQ==' ;;
win-x64/cuda) pkg=win-x64-cuda integrity='sha512-PLz70neFEMkQTlmJqG1ujUtCSgHasLPMxQ9rLkqQVmZYAXqkRj+45TIHCjdn3XqUeaoun0vrO9rRaxZ8NVq9jg==' ;;
win-x64/vulkan) pkg=win-x64-vulkan integrity='sha512-HJ237Azh5m4Sz+w3A1IU/fYLaSDOocskcfn2ILTgqTuuORCB86EMnu3Yt/XsNhRHTtEiwz1Q/E0mO4PLIbZLAA==' ;;
linux-x64/* | win-x64/*) die "no '$variant' build for $platform (there are: cpu, cuda, vulkan)" ;;
linux-arm64/*) die "no '$variant' build for linux-arm64 (there is: cpu)" ;;
*) die "unknown platform '$platform' (linux-x64, linux-arm64, mac-arm64, win-x64)" ;;
esac
infix=""
[ "$variant" = cpu ] || infix=".$variant"
case "$platform" in
win-*) libname="llama$infix.v$release.dll" ;;
mac-*) libname="libllama$infix.v$release.dylib" ;;
*) libname="libllama$infix.v$release.so" ;;
esac
spec="@node-llama-cpp/$pkg@$version"
stamp_name=.blip2chat-llama-lib
stamp_head="$spec"$'\n'"$integrity"

# Checksums with whichever tool this machine has: sha512 as base64 (the npm integrity format), sha256 as hex.
sha512_b64() {
	if command -v openssl >/dev/null; then
		openssl dgst -sha512 -binary "$1" | openssl base64 -A
	elif command -v sha512sum >/dev/null && command -v xxd >/dev/null; then
		sha512sum "$1" | cut -d' ' -f1 | xxd -r -p | base64 | tr -d '\n'
	elif command -v shasum >/dev/null && command -v xxd >/dev/null; then
		shasum -a 512 "$1" | cut -d' ' -f1 | xxd -r -p | base64 | tr -d '\n'
	else
		die "need openssl, or sha512sum/shasum and xxd, to verify the download"
	fi
}
sha256_hex() {
	if command -v sha256sum >/dev/null; then
		sha256sum "$1" | cut -d' ' -f1
	elif command -v shasum >/dev/null; then
		shasum -a 256 "$1" | cut -d' ' -f1
	elif command -v openssl >/dev/null; then
		openssl dgst -sha256 -r "$1" | cut -d' ' -f1
	else
		die "need sha256sum, shasum or openssl to record the files' checksums"
	fi
}
file_size() { wc -c <"$1" | tr -d ' '; }
verified() { [ -f "$1" ] && [ "sha512-$(sha512_b64 "$1")" = "$integrity" ]; }

# Fast path: DEST already holds this package, every file still has the size and sha256 the stamp recorded,
# and there is no other file in it (blip2chat refuses stray backend modules).
intact() {
	local d=$1 size sum name n=0 listed="/" f
	[ -f "$d/$stamp_name" ] && [ "$(head -n 2 "$d/$stamp_name")" = "$stamp_head" ] || return 1
	while read -r size sum name; do
		[ -n "$name" ] && [ -f "$d/$name" ] || return 1
		[ "$(file_size "$d/$name")" = "$size" ] && [ "$(sha256_hex "$d/$name")" = "$sum" ] || return 1
		listed="$listed$name/"
		n=$((n + 1))
	done < <(tail -n +3 "$d/$stamp_name")
	for f in "$d"/*; do
		case "$listed" in */"$(basename "$f")"/*) ;; *) return 1 ;; esac
	done
	[ "$n" -gt 0 ] && [ -f "$d/$libname" ]
}
if intact "$dest"; then
	echo "llama.cpp library ($spec) already in $dest"
	exit 0
fi

cache="$repo/.cache/npm"
tarball="$cache/node-llama-cpp-$pkg-$version.tgz"
mkdir -p "$cache"
if ! verified "$tarball"; then
	command -v npm >/dev/null || die "npm is needed once to download $spec (install Node.js/npm, or put a verified $(basename "$tarball") in $cache)"
	rm -f "$tarball"
	dl=$(mktemp -d "$cache/.dl.XXXXXX")
	trap 'rm -rf "$dl"' EXIT
	echo "$prog: downloading $spec with npm pack" >&2
	# npm pack of a registry spec only downloads the tarball; --ignore-scripts makes sure nothing runs.
	(cd "$dl" && npm pack "$spec" --ignore-scripts --silent >/dev/null) || die "npm pack $spec failed"
	got="$dl/$(basename "$tarball")"
	[ -f "$got" ] || die "npm pack $spec did not produce $(basename "$tarball")"
	verified "$got" || die "$spec: downloaded tarball fails the pinned integrity check (expected $integrity, got sha512-$(sha512_b64 "$got")); not unpacking it"
	mv -f "$got" "$tarball"
	rm -rf "$dl"
	trap - EXIT
fi

# Refuse to replace a folder this script did not make (DEST could be a typo for something precious).
if [ -e "$dest" ] && [ ! -f "$dest/$stamp_name" ]; then
	if [ ! -d "$dest" ] || [ -n "$(ls -A "$dest")" ]; then
		die "$dest exists and was not made by this script; remove it or choose another DEST"
	fi
fi

# Unpack next to DEST, then swap it in, so DEST never holds a half-written copy.
parent=$(dirname "$dest")
mkdir -p "$parent"
work=$(mktemp -d "$parent/.llama-lib.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/x" "$work/lib"
(cd "$work/x" && tar -xzf "$tarball" package/bins) || die "$tarball: cannot unpack"
while IFS= read -r -d '' f; do
	cp "$f" "$work/lib/$(basename "$f")"
done < <(find "$work/x/package/bins" -type f \( -name '*.so' -o -name '*.so.*' -o -name '*.dylib' -o -name '*.dll' \) -print0)
[ -f "$work/lib/$libname" ] || die "$tarball: no $libname inside; is the pinned package right?"
{
	echo "$stamp_head"
	for f in "$work/lib"/*; do
		echo "$(file_size "$f") $(sha256_hex "$f") $(basename "$f")"
	done
} >"$work/lib/$stamp_name"
rm -rf "$work/x"

old=""
if [ -e "$dest" ]; then
	old="$work/old"
	mv "$dest" "$old"
fi
mv "$work/lib" "$dest"
rm -rf "$work"
trap - EXIT

echo "llama.cpp library ($spec, llama.cpp v$release) in $(cd "$dest" && pwd)"
