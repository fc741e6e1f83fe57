found=0
if have ufw; then found=1; section "ufw"; ufw status verbose; fi
if have firewall-cmd; then found=1; section "firewalld"; firewall-cmd --state && firewall-cmd --list-all; fi
if have nft; then found=1; section "nftables"; nft list ruleset; fi
if have iptables; then found=1; section "iptables"; iptables -S; fi
if [ "$found" -eq 0 ]; then
    echo "error: no firewall tool (ufw, firewall-cmd, nft, iptables) is installed" >&2
    exit 127
fi
