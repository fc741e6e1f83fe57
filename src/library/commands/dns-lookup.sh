require name
check name "$HOST_RE" 'a host name'
section "Resolver configuration"
grep -E '^(nameserver|search|domain|options)' /etc/resolv.conf 2>/dev/null || echo "(no /etc/resolv.conf)"
section "Resolution of ${PARAM[name]}"
if have dig; then
    dig +noall +answer -- "${PARAM[name]}" A "${PARAM[name]}" AAAA
fi
need getent
getent ahosts -- "${PARAM[name]}" | awk '{ print $1 }' | sort -u | grep . || die "${PARAM[name]} does not resolve"
