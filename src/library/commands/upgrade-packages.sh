require packages
words packages "$NAME_RE" 'a package name'
pkg_manager
read -r -a pkgs <<<"${PARAM[packages]}"
echo "upgrading with $PM: ${pkgs[*]}"
case $PM in
apt-get)
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --only-upgrade -- "${pkgs[@]}"
    ;;
dnf | yum) "$PM" upgrade -y -- "${pkgs[@]}" ;;
zypper) zypper --non-interactive update -- "${pkgs[@]}" ;;
esac
