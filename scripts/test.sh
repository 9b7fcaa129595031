#!/usr/bin/env bash
# The test command (README, and CI through .ci/run): system packages (with Chromium for
# the browser test of the web app), then the whole Swift test suite. Needs no Python and
# no model downloads. Screenshots of the browser test land in .build/browser-screenshots/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install-deps.sh --browser
swift build --build-tests
# The kill-and-resume fault test (100 runs of the blend binary) runs on its own afterwards:
# alongside the others it takes the cores that the server suites' timed requests need.
swift test --skip-build --skip KillResumeTests
swift test --skip-build --filter KillResumeTests
# The kernel-dependent suites again under each of OpenBLAS's kernel sets this CPU runs.
scripts/test-kernel-sets.sh
