#!/usr/bin/env bash
# Installs what the tests need, then runs them all. README.md's test command, and
# what CI runs (.ci/run calls exactly this).
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
# KerasHub without its dependencies: requirements-dev.txt has the ones its image classifiers
# need; its tensorflow-text would install the full tensorflow package over tensorflow-cpu.
python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-hub.txt

# The end-to-end test drives Debian's Chromium (Playwright's own browser download
# does not work offline). Install it when it is missing and we are allowed to.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# Two workers (pytest-xdist): much of the suite waits on servers, browsers, sandbox
# workers and Ray, and a single process leaves the second core idle meanwhile. Ray and
# browser tests stay in one group each (tests/conftest.py).
exec python -m pytest -n 2 --dist loadgroup "$@"
