# drover public command library: helpers shared by every library command.
# The server prepends this file to each command and appends the parameter
# section; parameter values are read from that section (after `exit`, so
# bash never parses them) and never spliced into code.
set -u
export LC_ALL=C PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
die() { echo "error: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
need() {
    local t
    for t in "$@"; do
        have "$t" || { echo "error: '$t' is not installed on this machine" >&2; exit 127; }
    done
}
need_systemd() {
    need systemctl
    [ -d /run/systemd/system ] || die "systemd is not running on this machine (PID 1 is $(cat /proc/1/comm 2>/dev/null || echo unknown))"
}
section() { printf '\n== %s ==\n' "$*"; }
declare -A PARAM=()
_drover_load_params() {
    local -a lines=()
    local line found=0 i=0 name
    while IFS= read -r line || [ -n "$line" ]; do
        if [ "$found" -eq 0 ]; then
            [ "$line" = "__DROVER_PARAMETERS__" ] && found=1
            continue
        fi
        lines+=("$line")
    done <"$0"
    [ "$found" -eq 1 ] || die "the parameter section of $0 is missing"
    if [ "${#lines[@]}" -ne $(($# + 1)) ] || [ "${lines[$#]}" != "__DROVER_END__" ]; then
        die "parameter values must be single lines"
    fi
    for name in "$@"; do
        line=${lines[$i]}
        [ "${line%%=*}" = "$name" ] || die "the parameter section of $0 is malformed"
        PARAM[$name]=${line#*=}
        i=$((i + 1))
    done
}
# require NAME: the parameter must not be empty.
require() { [ -n "${PARAM[$1]}" ] || die "parameter '$1' is required"; }
# check NAME REGEX WHAT: the parameter must match REGEX (anchored) in full.
check() {
    [[ ${PARAM[$1]} =~ ^($2)$ ]] || die "parameter '$1' must be $3, got $(printf '%q' "${PARAM[$1]}")"
}
# words NAME REGEX WHAT: a space-separated list, each word matching REGEX.
words() {
    local w
    for w in ${PARAM[$1]}; do
        [[ $w =~ ^($2)$ ]] || die "parameter '$1': each item must be $3, got $(printf '%q' "$w")"
    done
}
# pkg_manager: sets PM to the package manager found, or fails.
pkg_manager() {
    local m
    for m in apt-get dnf yum zypper; do
        if have "$m"; then PM=$m; return 0; fi
    done
    echo "error: no supported package manager (apt-get, dnf, yum, zypper) found" >&2
    exit 127
}
NAME_RE='[A-Za-z0-9][A-Za-z0-9@._:+-]*'
USER_RE='[a-z_][a-z0-9_-]{0,31}'
HOST_RE='[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?|[0-9A-Fa-f:.]+'
