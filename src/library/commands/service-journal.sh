require service
check service "$NAME_RE" 'a unit name'
check lines '[1-9][0-9]{0,4}' 'a number from 1 to 99999'
need journalctl
need_systemd
section "Last ${PARAM[lines]} journal lines of ${PARAM[service]}"
journalctl --no-pager -n "${PARAM[lines]}" -u "${PARAM[service]}"
