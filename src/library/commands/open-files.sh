check pid '[0-9]{0,9}' 'a process id or empty'
check process_name '([A-Za-z0-9._:+-]{1,64})?' 'a process name or empty'
check limit '[1-9][0-9]{0,4}' 'a number'
pids=()
if [ -n "${PARAM[pid]}" ]; then
    pids=("${PARAM[pid]}")
elif [ -n "${PARAM[process_name]}" ]; then
    need pgrep
    mapfile -t pids < <(pgrep -x -- "${PARAM[process_name]}")
    [ "${#pids[@]}" -gt 0 ] || die "no process named ${PARAM[process_name]}"
else
    section "Processes with the most open files"
    for d in /proc/[0-9]*; do
        n=$(ls -- "$d/fd" 2>/dev/null | wc -l)
        echo "$n ${d#/proc/} $(cat "$d/comm" 2>/dev/null)"
    done | sort -rn | head -n "${PARAM[limit]}" | awk '{ printf "%8s files  pid %-8s %s\n", $1, $2, $3 }'
    exit 0
fi
for p in "${pids[@]}"; do
    [ -d "/proc/$p" ] || die "no process with pid $p"
    section "Open files of pid $p ($(cat "/proc/$p/comm"))"
    if have lsof; then
        lsof -n -P -p "$p" 2>/dev/null | head -n "$((PARAM[limit] + 1))"
    else
        ls -l -- "/proc/$p/fd" | head -n "$((PARAM[limit] + 1))"
    fi
    echo "count: $(ls -- "/proc/$p/fd" | wc -l)"
done
