#!/usr/bin/env bash
# The test command (README, and CI through .ci/run): system packages (with Chromium for
# the browser test of the web app), then the whole Swift test suite. Needs no Python and
# no model downloads. Screenshots of the browser test land in .build/browser-screenshots/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install-deps.sh --browser
swift build --build-tests
swift test --skip-build
