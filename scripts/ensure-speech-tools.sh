#!/usr/bin/env bash
# Makes sure Debian's espeak-ng and sox are installed: the offline evaluation (bench.offline_eval)
# speaks its cases with espeak-ng voices besides piper, and tests of that evaluation use them.
# Installs with apt only when missing and we are root; otherwise says so and those tests skip.
set -uo pipefail
missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v sox >/dev/null 2>&1 || missing+=(sox)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-speech-tools: ${missing[*]} missing and cannot install (not root or no apt-get): voice evaluation tests will be skipped" >&2
  exit 0
fi
echo "ensure-speech-tools: installing ${missing[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
if apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
  || (apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null); then
  echo "ensure-speech-tools: installed ${missing[*]}" >&2
else
  echo "ensure-speech-tools: apt-get install ${missing[*]} failed: voice evaluation tests will be skipped" >&2
fi
exit 0
