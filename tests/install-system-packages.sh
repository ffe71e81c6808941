#!/usr/bin/env bash
# Installs the Debian packages the tests drive: chromium (the real browser for e2e tests) and
# dovecot-imapd (the real IMAP server for the email-channel tests).
set -euo pipefail
needed=()
[ -x /usr/bin/chromium ] || needed+=(chromium)
[ -x /usr/sbin/dovecot ] || needed+=(dovecot-imapd)
[ ${#needed[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "Missing ${needed[*]}: install them with your package manager; the tests that need them skip until then." >&2
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${needed[@]}" >/dev/null
