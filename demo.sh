#!/usr/bin/env bash
# demo.sh — a guided tour of grove, from a fresh Debian 12 machine.
# Installs missing Debian packages, builds the examples, and runs them in order.
set -euo pipefail
cd "$(dirname "$0")"
source cmake/debian-deps.sh
grove_install_deps

cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j "$(nproc)" --target greenlet_pingpong generator >/dev/null

step() {
  echo
  echo "──── $1"
  echo "$2" | fold -s -w 78
  echo
  shift 2
  "$@"
}

step "1. greenlets: switching by hand (examples/greenlet_pingpong.cpp)" \
  "Three greenlets pass a ball round a ring. Nothing schedules them: each runs until it calls switch_to on the next. The one that finishes hands its result to its parent; the others are killed, with their destructors run, when the last handles to them go away." \
  build/release/examples/greenlet_pingpong

step "2. generators from greenlets (examples/generator.cpp)" \
  "A generator is a greenlet that yields values by switching back to whoever asked. One generator consumes another while producing; an endless one is simply abandoned." \
  build/release/examples/generator

echo
echo "──── That is the tour so far. The hub, tasks and cooperative I/O come next."
