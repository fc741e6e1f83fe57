check count '[1-9][0-9]{0,3}' 'a number'
section "Last ${PARAM[count]} logins"
if have last; then
    last -n "${PARAM[count]}" -w 2>/dev/null || last | head -n "${PARAM[count]}"
else
    echo "(last is not installed)"
fi
section "Currently logged in"
if have who; then who; else echo "(who is not installed)"; fi
if have lastlog; then
    section "Accounts that have ever logged in"
    lastlog 2>/dev/null | awk 'NR == 1 || !/Never logged in/'
fi
