require username
check username "$USER_RE" 'a user name'
check remove_home 'true|false' 'true or false'
need userdel
id -- "${PARAM[username]}" >/dev/null 2>&1 || die "user ${PARAM[username]} does not exist"
uid=$(id -u -- "${PARAM[username]}")
[ "$uid" -ge 1000 ] || die "refusing to delete system account ${PARAM[username]} (uid $uid)"
args=()
[ "${PARAM[remove_home]}" = true ] && args+=(-r)
userdel "${args[@]}" -- "${PARAM[username]}" || die "userdel failed"
echo "deleted user ${PARAM[username]}"
