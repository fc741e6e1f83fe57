check since_hours '[1-9][0-9]{0,3}' 'a number of hours'
need tar
dir=$(mktemp -d /tmp/drover-diag.XXXXXX) || die "cannot create a directory in /tmp"
{ uname -a; cat /etc/os-release 2>/dev/null; uptime; } >"$dir/system.txt" 2>&1
{ free -h 2>/dev/null; df -hP; } >"$dir/resources.txt" 2>&1
ps -eo pid,ppid,user,%cpu,%mem,etime,args >"$dir/processes.txt" 2>&1
{ ss -tulpn 2>/dev/null || netstat -tulpn 2>/dev/null; } >"$dir/sockets.txt"
dmesg 2>/dev/null | tail -n 2000 >"$dir/dmesg.txt"
if have journalctl && [ -d /run/systemd/system ]; then
    journalctl --no-pager --since "-${PARAM[since_hours]}h" 2>/dev/null | tail -n 20000 >"$dir/journal.txt"
fi
logs=()
for f in /var/log/syslog /var/log/messages /var/log/kern.log /var/log/auth.log /var/log/secure /var/log/dpkg.log /var/log/dnf.log; do
    [ -r "$f" ] && logs+=("$f")
done
out=/tmp/drover-diagnostics-$(hostname 2>/dev/null || echo host)-$(date +%Y%m%d%H%M%S).tar.gz
tar -czf "$out" -C / "${dir#/}" "${logs[@]#/}" 2>/dev/null || tar -czf "$out" -C / "${dir#/}" || die "tar failed"
rm -rf -- "$dir"
chmod 600 -- "$out"
echo "files: ${#logs[@]} log files and the collected reports"
echo "bundle: $out ($(du -h -- "$out" | cut -f1))"
