require username
check username "$USER_RE" 'a user name (lower case letters, digits, _ and -)'
check groups '([a-z_][a-z0-9_-]{0,31}(,[a-z_][a-z0-9_-]{0,31})*)?' 'a comma-separated list of group names'
check shell '/[A-Za-z0-9/._-]+' 'an absolute path'
need useradd
id -- "${PARAM[username]}" >/dev/null 2>&1 && die "user ${PARAM[username]} already exists"
grep -qxF -- "${PARAM[shell]}" /etc/shells 2>/dev/null || [ -x "${PARAM[shell]}" ] || die "shell ${PARAM[shell]} is not installed"
args=(-m -s "${PARAM[shell]}")
[ -n "${PARAM[groups]}" ] && args+=(-G "${PARAM[groups]}")
useradd "${args[@]}" -- "${PARAM[username]}" || die "useradd failed"
echo "created user ${PARAM[username]}: $(id -- "${PARAM[username]}")"
echo "the account has no password; set one with reset-password or add an SSH key"
