require path
check path '/[^[:cntrl:]]*' 'an absolute path'
check top '[1-9][0-9]{0,2}' 'a number from 1 to 999'
need du sort head
[ -d "${PARAM[path]}" ] || die "${PARAM[path]} is not a directory"
section "Filesystem of ${PARAM[path]}"
df -hP -- "${PARAM[path]}"
section "Largest ${PARAM[top]} directories under ${PARAM[path]} (same filesystem)"
du -xk --max-depth=2 -- "${PARAM[path]}" 2>/dev/null | sort -rn | head -n "${PARAM[top]}" |
    awk '{ kb=$1; $1=""; printf "%10.1f MiB %s\n", kb/1024, substr($0,2) }'
