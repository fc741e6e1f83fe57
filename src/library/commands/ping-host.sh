require host
check host "$HOST_RE" 'a host name or IP address'
check count '[1-9][0-9]?' 'a number from 1 to 99'
need ping
ping -c "${PARAM[count]}" -W 2 -- "${PARAM[host]}" || die "${PARAM[host]} is not reachable by ICMP"
