#!/usr/bin/env bash
# The whole test suite under a sanitizer, in its own build folder (see DEVELOPERS.md).
#
#   scripts/sanitize.sh address     # AddressSanitizer: out-of-bounds, use-after-free, leaks off
#   scripts/sanitize.sh thread      # ThreadSanitizer: data races (the engine's parallel loops,
#                                   # the downloader's URLSession delegate, the server's job runner)
#   scripts/sanitize.sh address --filter BlendCheckpointTests   # extra arguments go to swift test
#
# Each sanitizer needs its own full build (.build-asan, .build-tsan): on the loaded 2-core
# machine about 40 minutes the first time (swift-crypto's BoringSSL is most of it), so run them
# before merging changes to the engine's parallel code, the C-library wrappers or the readers
# of untrusted files, not on every change. Without extra arguments the suite runs as
# scripts/test.sh runs it: everything but KillResumeTests, then KillResumeTests alone (it runs
# the sanitized `blend` binary of the same build folder, beside the test binary).
#
# BLEND_SANITIZER=address|thread tells the few tests that cannot hold under a sanitizer (they
# measure memory, which the sanitizer's shadow and quarantine inflate) to skip that check;
# DEVELOPERS.md lists them. Swift runtime and Foundation false positives of ThreadSanitizer are
# suppressed in scripts/tsan-suppressions.txt (each entry explained there).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

kind="${1:-}"
shift || true
case "$kind" in
    address)
        scratch=.build-asan
        export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}" ;;
    thread)
        scratch=.build-tsan
        export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/scripts/tsan-suppressions.txt}" ;;
    *) echo "usage: $0 address|thread [swift test arguments]" >&2; exit 2 ;;
esac
export BLEND_SANITIZER="$kind"

scripts/install-deps.sh --browser
swift build --build-tests --sanitize="$kind" --scratch-path "$scratch"
if [[ $# -gt 0 ]]; then
    swift test --skip-build --sanitize="$kind" --scratch-path "$scratch" "$@"
else
    swift test --skip-build --sanitize="$kind" --scratch-path "$scratch" --skip KillResumeTests
    swift test --skip-build --sanitize="$kind" --scratch-path "$scratch" --filter KillResumeTests
fi
