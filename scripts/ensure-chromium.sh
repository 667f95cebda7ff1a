#!/usr/bin/env bash
# The browser tests (tests/node/browser.test.mjs) drive Debian's Chromium with
# puppeteer-core. Install it when it is missing (as root, from the Debian archive); without
# it those tests fail, they are not skipped.
set -euo pipefail
if command -v chromium > /dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get > /dev/null 2>&1; then
  echo "ensure-chromium: chromium is missing; install Debian's chromium package (apt-get install chromium)" >&2
  exit 1
fi
echo "ensure-chromium: installing Debian's chromium for the browser tests"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null
command -v chromium
