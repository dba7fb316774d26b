#!/usr/bin/env bash
# Installs the Debian 12 packages the build and the tests need, skipping those already present.
# Safe to run repeatedly; uses sudo when not root. Rust itself is expected (rustup, 1.85+).
set -euo pipefail

packages=(pkg-config clang libclang-dev libavformat-dev libavcodec-dev libavutil-dev
          libswscale-dev libavfilter-dev libavdevice-dev cmake nasm ffmpeg time)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "install-deps: installing ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || { echo "install-deps: cargo not found; install Rust (https://rustup.rs)" >&2; exit 1; }
