#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks drive, those not there yet:
#   install-system-packages.sh PROGRAM=PACKAGE ...
# make test: chromium (the real browser) and dovecot-imapd (the real IMAP server);
# make bench: wrk (the HTTP load generator) and dovecot-imapd.
set -euo pipefail
needed=()
for pair in "$@"; do
  program=${pair%%=*}
  [ -x "$program" ] || command -v "$program" >/dev/null || needed+=("${pair#*=}")
done
[ ${#needed[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "Missing ${needed[*]}: install them with your package manager; what needs them skips or fails until then." >&2
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${needed[@]}" >/dev/null
