require host
check host "$HOST_RE" 'a host name or IP address'
check port '[0-9]{1,5}' 'a port number'
check warn_days '[0-9]{1,4}' 'a number of days'
check server_name "($HOST_RE)?" 'a host name or empty'
need openssl
sni=${PARAM[server_name]:-${PARAM[host]}}
pem=$(openssl s_client -connect "${PARAM[host]}:${PARAM[port]}" -servername "$sni" </dev/null 2>/dev/null |
    openssl x509 2>/dev/null) || die "no certificate received from ${PARAM[host]}:${PARAM[port]}"
printf '%s\n' "$pem" | openssl x509 -noout -subject -issuer -dates
end=$(printf '%s\n' "$pem" | openssl x509 -noout -enddate | cut -d= -f2)
days=$(( ($(date -d "$end" +%s) - $(date +%s)) / 86400 ))
echo "days left: $days"
if [ "$days" -lt 0 ]; then die "the certificate has expired"; fi
if [ "$days" -lt "${PARAM[warn_days]}" ]; then die "the certificate expires within ${PARAM[warn_days]} days"; fi
echo "ok"
