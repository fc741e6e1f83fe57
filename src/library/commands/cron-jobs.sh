section "System crontab"
if [ -r /etc/crontab ]; then grep -Ev '^\s*(#|$)' /etc/crontab || echo "(empty)"; else echo "(no /etc/crontab)"; fi
for d in /etc/cron.d /etc/cron.hourly /etc/cron.daily /etc/cron.weekly /etc/cron.monthly; do
    [ -d "$d" ] || continue
    section "$d"
    ls -1 -- "$d"
done
section "User crontabs"
found=0
for f in /var/spool/cron/crontabs/* /var/spool/cron/*; do
    [ -f "$f" ] || continue
    found=1
    echo "-- ${f##*/}"
    grep -Ev '^\s*(#|$)' -- "$f" || true
done
[ "$found" -eq 1 ] || echo "(none)"
if have systemctl && [ -d /run/systemd/system ]; then
    section "systemd timers"
    systemctl list-timers --all --no-pager
fi
