check top '[1-9][0-9]{0,2}' 'a number from 1 to 999'
need ps
section "Memory"
if have free; then free -h; else grep -E '^(MemTotal|MemAvailable|Buffers|Cached|SwapTotal|SwapFree):' /proc/meminfo; fi
section "Top ${PARAM[top]} processes by resident memory"
ps -eo pid,user,rss,%mem,comm --sort=-rss | head -n $((PARAM[top] + 1))
