check apply 'true|false' 'true or false'
pkg_manager
case $PM in
apt-get)
    apt-get update -q >/dev/null || die "apt-get update failed"
    section "Pending upgrades from security sources"
    apt-get -s dist-upgrade | grep -i '^Inst.*securi' || echo "(none)"
    if [ "${PARAM[apply]}" = true ]; then
        have unattended-upgrade || die "unattended-upgrades is not installed; install it to apply security updates only"
        unattended-upgrade -v
    fi
    ;;
dnf | yum)
    section "Pending security updates"
    "$PM" -q updateinfo list security || true
    [ "${PARAM[apply]}" = true ] && "$PM" -y upgrade --security
    ;;
zypper)
    section "Pending security patches"
    zypper --non-interactive list-patches --category security || true
    [ "${PARAM[apply]}" = true ] && zypper --non-interactive patch --category security
    ;;
esac
[ "${PARAM[apply]}" = true ] || echo "dry run: nothing was changed (set apply=true to install)"
