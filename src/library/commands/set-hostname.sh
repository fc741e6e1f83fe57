require hostname
check hostname '[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*' 'a valid host name'
echo "old host name: $(hostname)"
if have hostnamectl && [ -d /run/systemd/system ]; then
    hostnamectl set-hostname -- "${PARAM[hostname]}" || die "hostnamectl failed"
else
    printf '%s\n' "${PARAM[hostname]}" >/etc/hostname || die "cannot write /etc/hostname"
    hostname "${PARAM[hostname]}" || die "setting the running host name failed"
fi
echo "new host name: $(hostname)"
