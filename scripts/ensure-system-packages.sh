#!/usr/bin/env bash
# Install the Debian packages the fleet runs on, only when they are missing:
# nginx-light (the gateway), postgresql (server binaries for local runs and tests), nats-server (the
# event broker with JetStream, for local runs and tests), prometheus (the metrics server make up runs,
# and promtool, which checks its configuration and rules in the tests), shellcheck (used by actionlint
# on the CI workflows), curl (the examples make up prints), docker-compose (validates the Compose
# file; needs no daemon), nodejs and npm, and chromium.
set -euo pipefail

missing=()
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  missing+=(nginx-light)
fi
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  missing+=(postgresql)
fi
if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
  missing+=(nats-server)
fi
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  missing+=(prometheus)
fi
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
# npm (with Node.js) for the pinned front-end packages: the API reference page's Swagger UI and the
# OpenAPI linter; Chromium for the e2e tests that use that page in a real browser, and for the
# gateway's CORS test (a page of another origin calling the API through it).
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing Debian packages: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# policy-rc.d keeps the packages from starting system-wide services we do not use. Where systemd
# runs (and no policy-rc.d says no), Debian's prometheus would start its own service on :9090, the
# port make up wants: masked before the install, the unit is never started, now or after a reboot.
# The fleet runs its own Prometheus, with its own configuration and data, and never this service.
if [[ " ${missing[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
  $sudo systemctl mask --quiet prometheus.service
fi
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
