require packages
words packages "$NAME_RE" 'a package name'
pkg_manager
read -r -a pkgs <<<"${PARAM[packages]}"
echo "installing with $PM: ${pkgs[*]}"
case $PM in
apt-get) DEBIAN_FRONTEND=noninteractive apt-get install -y -q -- "${pkgs[@]}" ;;
dnf | yum) "$PM" install -y -- "${pkgs[@]}" ;;
zypper) zypper --non-interactive install -- "${pkgs[@]}" ;;
esac
