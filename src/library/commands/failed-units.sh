need_systemd
section "Failed systemd units"
systemctl --failed --no-pager --no-legend --plain
n=$(systemctl --failed --no-legend --plain | grep -c . || true)
echo "failed units: $n"
