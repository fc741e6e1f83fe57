section "Listening TCP and UDP sockets"
if have ss; then
    ss -tulpn
elif have netstat; then
    netstat -tulpn
else
    echo "error: neither ss nor netstat is installed" >&2
    exit 127
fi
