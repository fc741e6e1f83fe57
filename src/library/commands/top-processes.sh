check sort_by 'cpu|mem' 'cpu or mem'
check top '[1-9][0-9]{0,2}' 'a number from 1 to 999'
need ps
key=-%cpu
[ "${PARAM[sort_by]}" = mem ] && key=-%mem
section "Top ${PARAM[top]} processes by ${PARAM[sort_by]}"
ps -eo pid,ppid,user,%cpu,%mem,etime,args --sort="$key" | head -n $((PARAM[top] + 1)) | cut -c1-200
