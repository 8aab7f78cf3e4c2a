#!/usr/bin/env bash
# Debian packages the tests need: prometheus (promtool and the server, for the lag-alert tests) and kcat (a
# librdkafka producer with its default partitioner, for the wrong-partition test of the case processor) and
# postgresql (the case store's production backend; the tests run its server binaries themselves, on loopback).
# Installs only what is missing; needs root (CI and the dev machines run as root).
set -euo pipefail
need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v kcat >/dev/null 2>&1 || need+=(kcat)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${need[*]}; install them with: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${need[*]}" >&2
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
