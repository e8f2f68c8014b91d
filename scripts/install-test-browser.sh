#!/usr/bin/env bash
# The browser the tests of `labctl web` drive: Debian's Chromium, /usr/bin/chromium.
# Playwright drives it as it is (executable_path); no test tool downloads a browser.
# Run first by the README's test command (and so by .ci/run). Does nothing when a
# Chromium is there already ($LABCTL_CHROMIUM, or /usr/bin/chromium).
set -euo pipefail

if [ -n "${LABCTL_CHROMIUM:-}" ] && [ -x "${LABCTL_CHROMIUM}" ]; then
    exit 0
fi
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-browser: no apt-get here: install Chromium and set LABCTL_CHROMIUM" \
         "to it, or the browser tests are skipped (they fail under CI)" >&2
    exit 0
fi
as_root=()
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        as_root=(sudo -n)
    else
        echo "install-test-browser: installing Debian's chromium needs root (sudo):" \
             "apt-get install chromium, or the browser tests are skipped (they fail under CI)" >&2
        exit 0
    fi
fi
echo "install-test-browser: installing Debian's chromium (apt-get)" >&2
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -qq update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -qq install -y chromium >/dev/null
/usr/bin/chromium --version >&2
