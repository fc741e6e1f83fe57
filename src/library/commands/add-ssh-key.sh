require username
check username "$USER_RE" 'a user name'
require public_key
check public_key '(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/]+=*( [[:print:]]*)?' 'an OpenSSH public key line'
id -- "${PARAM[username]}" >/dev/null 2>&1 || die "user ${PARAM[username]} does not exist"
home=$(getent passwd -- "${PARAM[username]}" | cut -d: -f6)
[ -n "$home" ] && [ -d "$home" ] || die "the home directory of ${PARAM[username]} does not exist"
group=$(id -gn -- "${PARAM[username]}")
file=$home/.ssh/authorized_keys
install -d -m 700 -o "${PARAM[username]}" -g "$group" -- "$home/.ssh"
touch -- "$file"
if grep -qxF -- "${PARAM[public_key]}" "$file"; then
    echo "the key is already authorized for ${PARAM[username]}"
else
    printf '%s\n' "${PARAM[public_key]}" >>"$file"
    echo "key added to $file"
fi
chown "${PARAM[username]}:$group" -- "$file"
chmod 600 -- "$file"
