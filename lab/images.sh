#!/usr/bin/env bash
# Builds the lab's two images locally (nothing is pulled):
#   roundhouse-lab/roundhouse:lab  FROM scratch + target/release/roundhouse + the libraries ldd lists
#   roundhouse-lab/tools:lab       a debootstrap (minbase) Debian rootfs with unbound, dig, curl,
#                                  iproute2, ping and python3-minimal (the WAN router's delay
#                                  line, lab/wan-delay.py), imported with `docker import`
# Each image carries a label with a hash of its inputs; an image whose label matches is reused.
# The Debian mirror is the one the host's apt sources use, read at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
SUITE=bookworm
TOOLS_PACKAGES=unbound,bind9-dnsutils,curl,iproute2,iputils-ping,procps,ca-certificates,python3-minimal

say() { printf 'lab: %s\n' "$*"; }

# The label value of an existing image, or nothing.
image_hash() { docker image inspect -f '{{ index .Config.Labels "roundhouse.lab.inputs" }}' "$1" 2>/dev/null || true; }

# The first http(s) Debian mirror in the host's apt sources (deb822 or one-line format),
# skipping security suites.
host_mirror() {
  local f uri=
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # deb822: paragraphs; take URIs of a paragraph whose Suites has no "-security"
    uri=$(awk 'BEGIN{RS=""; FS="\n"} {
        u=""; s="";
        for (i=1;i<=NF;i++) { if ($i ~ /^URIs:/) u=$i; if ($i ~ /^Suites:/) s=$i }
        if (u != "" && s !~ /-security/) { sub(/^URIs:[ \t]*/, "", u); split(u, a, /[ \t]+/); print a[1]; exit }
      }' "$f")
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    uri=$(awk '$1=="deb" && $0 !~ /-security/ { for (i=2;i<=NF;i++) if ($i ~ /^https?:/) { print $i; exit } }' "$f")
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  return 1
}

build_roundhouse() {
  local tag=roundhouse-lab/roundhouse:lab bin=$root/target/release/roundhouse
  if [ -z "${LAB_SKIP_CARGO:-}" ]; then
    say "cargo build --release"
    cargo build --release -q
  fi
  [ -x "$bin" ] || { echo "lab: $bin is missing" >&2; exit 1; }
  local hash
  # The binary and the libraries it loads, by content (ldd's load addresses change per run).
  hash=$( { sha256sum "$bin"; ldd "$bin" | awk '{ for (i=1;i<=NF;i++) if ($i ~ /^\//) print $i }' |
    xargs -r sha256sum; } | sha256sum | cut -c1-16)
  if [ "$(image_hash $tag)" = "$hash" ]; then
    say "image $tag is up to date"
    return
  fi
  say "building image $tag (FROM scratch: the binary and its shared libraries)"
  local dir
  dir=$(mktemp -d)
  mkdir -p "$dir/rootfs/tmp"
  cp "$bin" "$dir/rootfs/roundhouse"
  ldd "$bin" | awk '{ for (i=1;i<=NF;i++) if ($i ~ /^\//) print $i }' | while read -r lib; do
    mkdir -p "$dir/rootfs$(dirname "$lib")"
    cp -L "$lib" "$dir/rootfs$lib"
  done
  printf 'FROM scratch\nCOPY rootfs/ /\nLABEL roundhouse.lab.inputs=%s\nENTRYPOINT ["/roundhouse"]\n' "$hash" >"$dir/Dockerfile"
  local out old
  old=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
  out=$(docker build -q -t "$tag" "$dir" 2>&1) || { echo "$out" >&2; exit 1; }
  rm -rf "$dir"
  # The previous build, now untagged, goes (unless a container still uses it).
  if [ -n "$old" ] && [ "$old" != "$(docker image inspect -f '{{.Id}}' "$tag")" ]; then
    docker rmi "$old" >/dev/null 2>&1 || true
  fi
}

build_tools() {
  local tag=roundhouse-lab/tools:lab
  local hash
  hash=$(printf '%s %s %s\n' "$SUITE" "$TOOLS_PACKAGES" "v1" | sha256sum | cut -c1-16)
  if [ "$(image_hash $tag)" = "$hash" ]; then
    say "image $tag is up to date"
    return
  fi
  command -v debootstrap >/dev/null || {
    say "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q debootstrap >/dev/null
  }
  local mirror
  mirror=$(host_mirror) || { echo "lab: no Debian mirror found in the host's apt sources" >&2; exit 1; }
  say "building image $tag: debootstrap $SUITE from $mirror (a few minutes, once)"
  local dir
  dir=$(mktemp -d /var/tmp/roundhouse-lab-rootfs.XXXXXX)
  trap 'rm -rf "$dir"' RETURN
  $SUDO debootstrap --variant=minbase --include="$TOOLS_PACKAGES" "$SUITE" "$dir" "$mirror" \
    >"$dir.log" 2>&1 || { tail -20 "$dir.log" >&2; exit 1; }
  rm -f "$dir.log"
  # Slim the image: apt lists, caches, docs.
  $SUDO rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* \
    "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/locale/*
  $SUDO tar -C "$dir" -c . | docker import \
    --change "LABEL roundhouse.lab.inputs=$hash" \
    --change 'CMD ["sleep", "infinity"]' - "$tag" >/dev/null
}

case "${1:-all}" in
  roundhouse) build_roundhouse ;;
  tools) build_tools ;;
  all) build_roundhouse; build_tools ;;
  *) echo "usage: lab/images.sh [roundhouse|tools|all]" >&2; exit 2 ;;
esac
