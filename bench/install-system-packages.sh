#!/usr/bin/env bash
# Installs the Debian packages the benchmarks drive: wrk (the HTTP load generator) and
# dovecot-imapd (the IMAP server of the email benchmark).
set -euo pipefail
needed=()
command -v wrk >/dev/null || needed+=(wrk)
[ -x /usr/sbin/dovecot ] || needed+=(dovecot-imapd)
[ ${#needed[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "Missing ${needed[*]}: install them with your package manager to run the benchmarks." >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${needed[@]}" >/dev/null
