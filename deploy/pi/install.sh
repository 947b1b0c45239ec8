#!/usr/bin/env bash
# Install gatehouse on a Raspberry Pi OS gate (run as root from a checkout of the repo):
#   sudo deploy/pi/install.sh            # gate agent + kiosk
#   sudo deploy/pi/install.sh --hub      # the hub instead
# Idempotent: run it again after `git pull` to upgrade (see docs/operations.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
role=gate
[ "${1:-}" = "--hub" ] && role=hub

[ "$(id -u)" = 0 ] || { echo "run as root (sudo $0)" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq python3 python3-venv python3-dev libzbar0 rsync
[ "$role" = gate ] && apt-get install -y -qq chromium

id gatehouse >/dev/null 2>&1 || useradd --system --home /var/lib/gatehouse --shell /usr/sbin/nologin gatehouse
for g in gpio dialout video input; do getent group "$g" >/dev/null && usermod -aG "$g" gatehouse; done

install -d -o root -g root -m 0755 /opt/gatehouse /etc/gatehouse
rsync -a --delete --exclude .venv --exclude .git ./ /opt/gatehouse/
[ -x /opt/gatehouse/.venv/bin/python ] || python3 -m venv /opt/gatehouse/.venv
/opt/gatehouse/.venv/bin/pip install -q --upgrade pip
/opt/gatehouse/.venv/bin/pip install -q /opt/gatehouse

if [ "$role" = gate ]; then
  install -d -o gatehouse -g gatehouse -m 0750 /var/lib/gatehouse
  [ -f /etc/gatehouse/gate.toml ] || install -m 0640 -g gatehouse deploy/pi/gate.toml.example /etc/gatehouse/gate.toml
  install -m 0644 deploy/pi/99-gatehouse.rules /etc/udev/rules.d/99-gatehouse.rules
  udevadm control --reload-rules && udevadm trigger || true
  install -m 0644 deploy/pi/gatehouse-gate.service deploy/pi/gatehouse-kiosk.service /etc/systemd/system/
  systemctl daemon-reload
  systemctl enable gatehouse-gate.service gatehouse-kiosk.service
  echo "installed. Next: gatehouse gate enroll --hub URL --token TOKEN (see docs/operations.md), then"
  echo "  systemctl restart gatehouse-gate gatehouse-kiosk"
else
  install -d -o gatehouse -g gatehouse -m 0750 /var/lib/gatehouse-hub /var/backups/gatehouse
  install -m 0644 deploy/pi/gatehouse-hub.service /etc/systemd/system/
  systemctl daemon-reload
  systemctl enable gatehouse-hub.service
  echo "installed. Next: sudo -u gatehouse /opt/gatehouse/.venv/bin/gatehouse hub init --data /var/lib/gatehouse-hub"
fi
