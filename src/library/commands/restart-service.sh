require service
check service "$NAME_RE" 'a unit name'
need_systemd
systemctl cat -- "${PARAM[service]}" >/dev/null 2>&1 || die "unit ${PARAM[service]} does not exist"
systemctl restart -- "${PARAM[service]}" || die "restarting ${PARAM[service]} failed"
systemctl --no-pager status -- "${PARAM[service]}" | head -n 12
systemctl is-active --quiet -- "${PARAM[service]}" || die "${PARAM[service]} is not active after the restart"
echo "restarted ${PARAM[service]}"
