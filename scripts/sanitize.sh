#!/usr/bin/env bash
# The whole test suite under a sanitizer, in its own build folder (see DEVELOPERS.md).
#
#   scripts/sanitize.sh address     # AddressSanitizer: out-of-bounds, use-after-free, leaks off
#   scripts/sanitize.sh thread      # ThreadSanitizer: data races (the engine's parallel loops,
#                                   # the downloader's URLSession delegate)
#   scripts/sanitize.sh address --filter BlendCheckpointTests   # extra arguments go to swift test
#
# Each sanitizer needs its own full build (.build-asan, .build-tsan): on a 2-core machine that
# is 10-20 minutes the first time, so run them before merging changes to the engine's parallel
# code, the C-library wrappers or the readers of untrusted files, not on every change.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

kind="${1:-}"
shift || true
case "$kind" in
    address) scratch=.build-asan; export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}" ;;
    thread) scratch=.build-tsan; export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1}" ;;
    *) echo "usage: $0 address|thread [swift test arguments]" >&2; exit 2 ;;
esac

scripts/install-deps.sh
swift build --build-tests --sanitize="$kind" --scratch-path "$scratch"
swift test --skip-build --sanitize="$kind" --scratch-path "$scratch" "$@"
