require url
check url 'https?://[A-Za-z0-9._~:/?#@!$&()*+,;=%-]+' 'an http:// or https:// URL'
check expect_status '([1-5][0-9][0-9])?' 'an HTTP status code or empty'
check timeout_seconds '[1-9][0-9]{0,2}' 'a number of seconds'
need curl
out=$(curl -sS -o /dev/null --max-time "${PARAM[timeout_seconds]}" \
    -w 'status: %{http_code}\nremote: %{remote_ip}:%{remote_port}\ntime_total: %{time_total}s\nsize: %{size_download} bytes\n' \
    -- "${PARAM[url]}" 2>&1)
rc=$?
printf '%s\n' "$out"
[ "$rc" -eq 0 ] || die "curl failed (exit $rc)"
if [ -n "${PARAM[expect_status]}" ]; then
    grep -qx "status: ${PARAM[expect_status]}" <<<"$out" || die "expected status ${PARAM[expect_status]}"
fi
echo "ok"
