#!/usr/bin/env bash
# The dashboard's browser tests (tests/browser) drive Debian's Chromium at /usr/bin/chromium through
# Playwright; `playwright install` is never run (it downloads a browser build of its own).
set -euo pipefail
CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "installing Chromium for the browser tests (apt-get install chromium) ..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    exit 0
fi
echo "tests/browser need Chromium at $CHROMIUM: run 'sudo apt-get install chromium' (Debian/Ubuntu)," >&2
echo "or skip them with: .venv/bin/pytest -m 'not browser'" >&2
exit 1
