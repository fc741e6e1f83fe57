require username
check username "$USER_RE" 'a user name'
[ -n "${PARAM[password]}" ] || die "parameter 'password' is required"
[ "${#PARAM[password]}" -ge 8 ] || die "the password must be at least 8 characters"
[[ ${PARAM[password]} != *:* ]] || die "the password must not contain ':'"
need chpasswd
id -- "${PARAM[username]}" >/dev/null 2>&1 || die "user ${PARAM[username]} does not exist"
printf '%s:%s\n' "${PARAM[username]}" "${PARAM[password]}" | chpasswd || die "chpasswd failed"
echo "password of ${PARAM[username]} changed"
