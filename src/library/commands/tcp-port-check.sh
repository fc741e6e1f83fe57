require host
check host "$HOST_RE" 'a host name or IP address'
check port '[0-9]{1,5}' 'a port number'
check timeout_seconds '[1-9][0-9]?' 'a number of seconds from 1 to 99'
need timeout
if timeout "${PARAM[timeout_seconds]}" bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "${PARAM[host]}" "${PARAM[port]}" 2>/dev/null; then
    echo "open: ${PARAM[host]}:${PARAM[port]} accepts TCP connections"
else
    die "closed: cannot connect to ${PARAM[host]}:${PARAM[port]} within ${PARAM[timeout_seconds]}s"
fi
