section "Operating system"
if [ -r /etc/os-release ]; then cat /etc/os-release; else echo "(no /etc/os-release)"; fi
section "Kernel"
uname -a
[ -r /proc/version ] && cat /proc/version
