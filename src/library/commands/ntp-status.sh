section "Clock synchronisation"
if have timedatectl && [ -d /run/systemd/system ]; then
    timedatectl status
    timedatectl show -p NTPSynchronized --value 2>/dev/null | grep -qx yes && echo "synchronized: yes" || echo "synchronized: no"
elif have chronyc; then
    chronyc tracking
elif have ntpq; then
    ntpq -p
else
    echo "error: none of timedatectl (with systemd), chronyc or ntpq is available" >&2
    exit 127
fi
