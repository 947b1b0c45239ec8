#!/usr/bin/env bash
# Make a gate survive power cuts: read-only (overlay) root, the gate's data on its own partition.
#
#   sudo deploy/pi/readonly-root.sh --data-device /dev/mmcblk0p3 [--format]
#   DESTDIR=/tmp/root deploy/pi/readonly-root.sh --data-device /dev/sda1   # only write fstab there
#
# 1. The data partition (journal, replica, manifest, credentials) is mounted at
#    /var/lib/gatehouse by its label, with errors=remount-ro; --format makes it (ext4, label
#    gatehouse-data) and DESTROYS what is on it. SQLite (WAL, synchronous=FULL) keeps every
#    committed journal entry across a cut; ext4's journal keeps the file system consistent.
# 2. The root file system becomes an overlay in RAM (raspi-config's overlay file system):
#    a cut can no longer corrupt the system, and the card sees almost no writes. Changes to
#    the system (upgrades) need the overlay off: `sudo raspi-config nonint do_overlayfs 1`,
#    reboot, upgrade, turn it on again.
# Idempotent: the fstab line is written once. See docs/operations.md ("Power loss and SD cards").
set -euo pipefail

device=""
format=0
while [ $# -gt 0 ]; do
  case "$1" in
    --data-device) device="${2:-}"; shift 2 ;;
    --format) format=1; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "readonly-root.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -n "$device" ] || { echo "readonly-root.sh: --data-device DEVICE is required" >&2; exit 2; }

root="${DESTDIR:-}"
root="${root%/}"
label=gatehouse-data
line="LABEL=$label /var/lib/gatehouse ext4 defaults,noatime,nodev,nosuid,errors=remount-ro,commit=5 0 2"

if [ -z "$root" ]; then
  [ "$(id -u)" = 0 ] || { echo "run as root (sudo $0)" >&2; exit 1; }
  [ -b "$device" ] || { echo "readonly-root.sh: $device is not a block device" >&2; exit 2; }
  if [ "$format" = 1 ]; then
    echo "==> formatting $device as ext4 ($label)"
    mkfs.ext4 -F -L "$label" "$device"
  elif ! blkid -L "$label" >/dev/null 2>&1; then
    echo "readonly-root.sh: no partition labelled $label: run again with --format (erases $device)" >&2
    exit 2
  fi
fi

install -d -m 0755 "$root/etc" "$root/var/lib/gatehouse"
touch "$root/etc/fstab"
if grep -q "^LABEL=$label " "$root/etc/fstab"; then
  echo "==> fstab already mounts $label"
else
  echo "==> fstab: $label on /var/lib/gatehouse"
  printf '%s\n' "$line" >> "$root/etc/fstab"
fi

if [ -z "$root" ]; then
  mountpoint -q /var/lib/gatehouse || mount /var/lib/gatehouse
  chown gatehouse:gatehouse /var/lib/gatehouse 2>/dev/null || true
  chmod 0750 /var/lib/gatehouse
  if command -v raspi-config >/dev/null 2>&1; then
    echo "==> overlay (read-only) root: on at the next boot"
    raspi-config nonint do_overlayfs 0
  else
    echo "raspi-config not found: enable a read-only root by hand (overlayroot), see docs/operations.md" >&2
  fi
  echo "done: reboot to run from the read-only root"
fi
