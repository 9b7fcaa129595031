#!/usr/bin/env bash
# The test command (README, and CI through .ci/run): system packages, then the
# whole Swift test suite. Needs no Python and no model downloads.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install-deps.sh
swift build --build-tests
swift test --skip-build
