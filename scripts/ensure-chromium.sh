#!/usr/bin/env bash
# Makes sure Debian's Chromium is at /usr/bin/chromium for the browser tests (Playwright drives it
# through executable_path; `playwright install` is never used). Installs it with apt only when it is
# missing and we are root; otherwise says so and the browser tests skip with that reason.
set -uo pipefail
CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "ensure-chromium: $CHROMIUM is missing and we are not root: browser tests will be skipped" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: $CHROMIUM is missing and apt-get is not available: browser tests will be skipped" >&2
  exit 0
fi
echo "ensure-chromium: installing Debian's chromium with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
  echo "ensure-chromium: installed $(command -v chromium)" >&2
else
  echo "ensure-chromium: apt-get install chromium failed: browser tests will be skipped" >&2
fi
exit 0
