#!/usr/bin/env bash
# The test command: sets up everything the tests need on a fresh Debian machine (Debian's chromium,
# firefox-esr, caddy, coturn and redis-server, a virtualenv with meetnow and its test tools,
# TypeScript for the JS type check), then runs the linters, the type checkers and the whole test
# suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then as_root apt-get update -q >/dev/null; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
}

echo "== setup"
[ -x /usr/bin/chromium ] || { echo "installing Debian's chromium"; apt_install chromium; }
# Caddy and coturn for tests/server/test_deploy.py and tests/server/test_check.py: the tests start their own on
# free loopback ports, so stop the services the packages may have started (ports 80, 443, 3478).
if ! { command -v caddy && command -v turnserver; } >/dev/null; then
  echo "installing Debian's caddy and coturn"
  apt_install caddy coturn
  for service in caddy coturn; do
    as_root systemctl stop "$service" >/dev/null 2>&1 || as_root service "$service" stop >/dev/null 2>&1 || true
  done
fi
# Firefox for tests/web/test_firefox.py (driven headless over WebDriver BiDi: tests/support/firefox.py).
command -v firefox-esr >/dev/null || { echo "installing Debian's firefox-esr"; apt_install firefox-esr; }
# Redis for the tests of the Redis-backed room state: they start their own on a free loopback port,
# so stop the service the package may have started (port 6379).
if ! command -v redis-server >/dev/null; then
  echo "installing Debian's redis-server"
  apt_install redis-server
  as_root systemctl stop redis-server >/dev/null 2>&1 || as_root service redis-server stop >/dev/null 2>&1 || true
fi
command -v node >/dev/null || { echo "installing node"; apt_install nodejs npm; }
# nftables and iptables for the network benchmark's impaired links (benchmarks/netns.py; its smoke
# run skips them, saying so, where they or root are missing).
if ! { command -v nft && command -v iptables; } >/dev/null; then
  echo "installing Debian's nftables and iptables"; apt_install nftables iptables
fi
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv 2>/dev/null || { apt_install python3-venv; rm -rf .venv; "$PYTHON" -m venv .venv; }
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
if [ ! -x .cache/node/node_modules/.bin/tsc ]; then
  npm install -s --prefix .cache/node --no-audit --no-fund typescript@5 >/dev/null
fi
# axe-core for tests/web/test_axe.py: its source is injected into the pages (the CSP blocks script tags).
if [ ! -f .cache/node/node_modules/axe-core/axe.min.js ]; then
  npm install -s --prefix .cache/node --no-audit --no-fund axe-core@4 >/dev/null
fi

echo "== lint and types"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
for file in web_client/js/*.js; do node --check "$file"; done
.cache/node/node_modules/.bin/tsc -p web_client/jsconfig.json

echo "== tests"
mkdir -p test-artifacts
# pytest exits 5 when it ran no test: with set -e that fails the run, as it should.
.venv/bin/python -m pytest -q -p no:cacheprovider --durations=30 "$@"
