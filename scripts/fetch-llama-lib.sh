#!/usr/bin/env bash
# fetch-llama-lib.sh [DEST]: put llama.cpp's prebuilt shared library (v0.4.0) into DEST (default: lib/ at the
# repo root).
#
# The library comes from node-llama-cpp's per-platform npm package, fetched with `npm pack` (a plain tarball
# download: no package code runs) and checked against the registry integrity pinned below before anything is
# unpacked. The tarball is kept in .cache/npm/ so later runs work offline; DEST gets a stamp file so a second run
# is a fast no-op. Only the shared libraries are unpacked, not the node addon.
set -euo pipefail

prog=fetch-llama-lib
die() { echo "$prog: $*" >&2; exit 1; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=${1:-$repo/lib}
[ "$#" -le 1 ] || die "usage: scripts/fetch-llama-lib.sh [DEST]"

version=3.21.1
os=$(uname -s)
arch=$(uname -m)
case "$os/$arch" in
Linux/x86_64 | Linux/amd64)
	pkg=linux-x64
	integrity='sha512-Totj6RTDMGo3FoK2yNUaz/oGmZD0olAqTrRluFUWmu0kW2i9TOzHSW0OWCAiGkzRCVX0WsU2CyUQo/W2NYtdPA=='
	libname=libllama.v0.4.0.so
	;;
Darwin/arm64)
	pkg=mac-arm64-metal
	integrity='sha512-6MIDAZV7DXD9R1+jEXWJkFuolni3GATGE6mmuyFYc6ZmtOh9djAy15df0T0AXK3sCmVKL+fQcOAWZezxx4MvQQ=='
	libname=libllama.metal.v0.4.0.dylib
	;;
*)
	die "no prebuilt llama.cpp library for $os/$arch (supported: Linux x86_64, macOS arm64); build llama.cpp v0.4.0 as shared libraries yourself and pass its folder with --llama-lib or \$BLIP2CHAT_LLAMA_LIB"
	;;
esac
spec="@node-llama-cpp/$pkg@$version"
stamp_name=.blip2chat-llama-lib
# The stamp's first two lines identify the exact tarball; the rest lists the unpacked files.
stamp_head="$spec"$'\n'"$integrity"

# Fast path: DEST already holds this verified copy with every file it listed.
if [ -f "$dest/$stamp_name" ] && [ "$(head -n 2 "$dest/$stamp_name")" = "$stamp_head" ]; then
	complete=1
	while IFS= read -r f; do
		[ -f "$dest/$f" ] || { complete=0; break; }
	done < <(tail -n +3 "$dest/$stamp_name")
	if [ "$complete" = 1 ] && [ -f "$dest/$libname" ]; then
		echo "llama.cpp library ($spec) already in $dest"
		exit 0
	fi
fi

# sha512 of a file as base64 (the npm integrity format), with whichever tool this machine has.
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
verified() { [ -f "$1" ] && [ "sha512-$(sha512_b64 "$1")" = "$integrity" ]; }

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
tar -xzf "$tarball" -C "$work/x" package/bins || die "$tarball: cannot unpack"
files=()
while IFS= read -r -d '' f; do
	base=$(basename "$f")
	cp "$f" "$work/lib/$base"
	files+=("$base")
done < <(find "$work/x/package/bins" -type f \( -name '*.so' -o -name '*.so.*' -o -name '*.dylib' \) -print0)
[ -f "$work/lib/$libname" ] || die "$tarball: no $libname inside; is the pinned package right?"
{
	echo "$stamp_head"
	printf '%s\n' "${files[@]}" | sort
} >"$work/lib/$stamp_name"

old=""
if [ -e "$dest" ]; then
	old="$work/old"
	mv "$dest" "$old"
fi
mv "$work/lib" "$dest"
rm -rf "$work"
trap - EXIT

echo "llama.cpp library ($spec, llama.cpp v0.4.0) in $(cd "$dest" && pwd)"
