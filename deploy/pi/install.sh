#!/usr/bin/env bash
# Install gatehouse on a Raspberry Pi OS gate (run as root from a checkout of the repo):
#   sudo deploy/pi/install.sh            # gate agent + kiosk
#   sudo deploy/pi/install.sh --hub      # the hub instead
#   DESTDIR=/tmp/root deploy/pi/install.sh   # stage the files into another root (an image, a test)
#
# Idempotent: run it again after `git pull` to upgrade (see docs/operations.md). An edited
# /etc/gatehouse/gate.toml is never overwritten.
#
# With DESTDIR set, only files are written (under DESTDIR): no apt-get, no user, no virtualenv
# (a venv is not relocatable: it is built on the Pi by running this script there), no systemctl.
set -euo pipefail

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }

role=gate
for arg in "$@"; do
  case "$arg" in
    --hub) role=hub ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $arg" >&2; usage >&2; exit 2 ;;
  esac
done

src="$(cd "$(dirname "$0")/../.." && pwd)"
root="${DESTDIR:-}"
root="${root%/}"
system=1
[ -n "$root" ] && system=0

say() { echo "==> $*"; }

if [ "$system" = 1 ]; then
  [ "$(id -u)" = 0 ] || { echo "run as root (sudo $0)" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  say "system packages"
  apt-get update -qq
  apt-get install -y -qq python3 python3-venv python3-dev libzbar0 rsync
  if [ "$role" = gate ]; then
    # Kiosk browser; evdev (keyboard-wedge scanners) has no aarch64 wheel: Debian's package.
    apt-get install -y -qq chromium python3-evdev
    # gpiozero's pin driver on Bookworm is lgpio: only Raspberry Pi OS packages it (no wheel).
    apt-get install -y -qq python3-lgpio ||
      echo "    python3-lgpio not available (not Raspberry Pi OS?): the GPIO turnstile backend will not work"
  fi
  id gatehouse >/dev/null 2>&1 ||
    useradd --system --home /var/lib/gatehouse --shell /usr/sbin/nologin gatehouse
  for g in gpio dialout video input; do
    if getent group "$g" >/dev/null; then usermod -aG "$g" gatehouse; fi
  done
  owner=(-o gatehouse -g gatehouse)
else
  owner=()
fi

say "program files in $root/opt/gatehouse"
install -d -m 0755 "$root/opt/gatehouse" "$root/etc/gatehouse"
if command -v rsync >/dev/null 2>&1; then
  rsync -a --delete --exclude .venv --exclude .git --exclude __pycache__ "$src/" "$root/opt/gatehouse/"
else  # staging machines without rsync: same files, stale ones left (a fresh root has none)
  tar -C "$src" --exclude=.venv --exclude=.git --exclude=__pycache__ -cf - . | tar -C "$root/opt/gatehouse" -xf -
fi

if [ "$system" = 1 ]; then
  say "virtualenv /opt/gatehouse/.venv"
  # A gate's venv sees Debian's python3-lgpio and python3-evdev (built for this board).
  venv_args=()
  [ "$role" = gate ] && venv_args=(--system-site-packages)
  [ -x /opt/gatehouse/.venv/bin/python ] || python3 -m venv "${venv_args[@]}" /opt/gatehouse/.venv
  /opt/gatehouse/.venv/bin/pip install -q --upgrade pip
  /opt/gatehouse/.venv/bin/pip install -q /opt/gatehouse
fi

# Logs go to journald only; bound it so a chatty day cannot fill the card (and keep writes few).
install -d -m 0755 "$root/etc/systemd/journald.conf.d" "$root/etc/systemd/system"
install -m 0644 "$src/deploy/pi/journald-gatehouse.conf" "$root/etc/systemd/journald.conf.d/gatehouse.conf"

if [ "$role" = gate ]; then
  say "gate: config, udev rules, units"
  install -d "${owner[@]}" -m 0750 "$root/var/lib/gatehouse"
  if [ ! -f "$root/etc/gatehouse/gate.toml" ]; then
    install -m 0640 "$src/deploy/pi/gate.toml.example" "$root/etc/gatehouse/gate.toml"
    if [ "$system" = 1 ]; then chgrp gatehouse /etc/gatehouse/gate.toml; fi
  else
    echo "    keeping the existing $root/etc/gatehouse/gate.toml"
  fi
  install -d -m 0755 "$root/etc/udev/rules.d"
  install -m 0644 "$src/deploy/pi/99-gatehouse.rules" "$root/etc/udev/rules.d/99-gatehouse.rules"
  install -m 0644 "$src/deploy/pi/gatehouse-gate.service" "$src/deploy/pi/gatehouse-kiosk.service" \
    "$root/etc/systemd/system/"
  if [ "$system" = 1 ]; then
    udevadm control --reload-rules && udevadm trigger || echo "    udev not reloaded (reboot to apply the rules)"
    systemctl restart systemd-journald || true
    systemctl daemon-reload
    systemctl enable gatehouse-gate.service gatehouse-kiosk.service
    /opt/gatehouse/.venv/bin/gatehouse gate check-config /etc/gatehouse/gate.toml ||
      echo "    edit /etc/gatehouse/gate.toml for this lane (the problems are listed above)"
    echo "installed. Next (docs/operations.md): edit /etc/gatehouse/gate.toml, then"
    echo "  sudo -u gatehouse /opt/gatehouse/.venv/bin/gatehouse gate enroll --hub URL --token=TOKEN"
    echo "  systemctl restart gatehouse-gate gatehouse-kiosk && gatehouse gate doctor"
  fi
else
  say "hub: data directories, unit"
  install -d "${owner[@]}" -m 0750 "$root/var/lib/gatehouse-hub" "$root/var/backups/gatehouse"
  install -m 0644 "$src/deploy/pi/gatehouse-hub.service" "$root/etc/systemd/system/"
  if [ "$system" = 1 ]; then
    systemctl daemon-reload
    systemctl enable gatehouse-hub.service
    echo "installed. Next: sudo -u gatehouse /opt/gatehouse/.venv/bin/gatehouse hub init --data /var/lib/gatehouse-hub"
  fi
fi
say "done${root:+ (staged in $root)}"
