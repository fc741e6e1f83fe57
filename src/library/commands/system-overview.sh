section "Host"
echo "hostname: $(hostname 2>/dev/null || cat /proc/sys/kernel/hostname)"
if [ -r /etc/os-release ]; then . /etc/os-release; echo "os: ${PRETTY_NAME:-unknown}"; fi
echo "kernel: $(uname -srm)"
echo "uptime: $(cut -d' ' -f1 /proc/uptime | cut -d. -f1) seconds"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "cpus: $(getconf _NPROCESSORS_ONLN 2>/dev/null || grep -c ^processor /proc/cpuinfo)"
section "Memory"
if have free; then free -h; else grep -E '^(MemTotal|MemAvailable|SwapTotal|SwapFree):' /proc/meminfo; fi
section "Filesystems"
df -hP -x tmpfs -x devtmpfs -x overlay 2>/dev/null || df -hP
section "Network addresses"
if have ip; then ip -brief address 2>/dev/null || ip address; else hostname -I 2>/dev/null || echo "(ip not installed)"; fi
