#!/usr/bin/env bash
# Installs Debian's prometheus package (prometheus and promtool) when it is missing: the tests check the alert
# rules with promtool and scrape a running service with a real Prometheus.
set -euo pipefail
if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "prometheus: install Prometheus (prometheus and promtool on PATH) to run the operations tests" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "prometheus: installing Debian's prometheus package" >&2
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
command -v promtool >/dev/null
