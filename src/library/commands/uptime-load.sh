section "Uptime and load"
have uptime && uptime
read -r l1 l5 l15 _ </proc/loadavg
cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null || grep -c ^processor /proc/cpuinfo)
echo "load averages: $l1 $l5 $l15 on $cpus CPUs"
echo "booted: $(date -d "@$(( $(date +%s) - $(cut -d. -f1 /proc/uptime) ))" '+%Y-%m-%d %H:%M:%S %Z')"
