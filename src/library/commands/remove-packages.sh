require packages
words packages "$NAME_RE" 'a package name'
pkg_manager
read -r -a pkgs <<<"${PARAM[packages]}"
echo "removing with $PM: ${pkgs[*]}"
case $PM in
apt-get) DEBIAN_FRONTEND=noninteractive apt-get remove -y -q -- "${pkgs[@]}" ;;
dnf | yum) "$PM" remove -y -- "${pkgs[@]}" ;;
zypper) zypper --non-interactive remove -- "${pkgs[@]}" ;;
esac
