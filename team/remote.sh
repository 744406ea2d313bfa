#!/usr/bin/env bash
# The team's DVC remote on a server reachable over SSH.
#
#   team/remote.sh set user@host:/srv/dvc/titanic             # once per clone (scp-like)
#   team/remote.sh set ssh://user@host:2222/srv/dvc/titanic   # with a port
#   team/remote.sh push | pull | exp push origin EXP | ...    # dvc <the rest>, failures in one line
#
# What the whole team shares goes into .dvc/config (committed): the remote `team`, its host, port
# and path, as the default remote. What is personal goes into .dvc/config.local (git ignores it):
# the user name, and the key file when DVC_SSH_KEYFILE names one. No password or key is ever
# written: DVC (asyncssh) takes keys from the SSH agent or ~/.ssh (id_ed25519, id_rsa, ...), and
# the server must be in ~/.ssh/known_hosts (connect once with `ssh` to accept its key).
set -euo pipefail

name=${DVC_REMOTE_NAME:-team}
say() { printf 'remote: %s\n' "$*"; }
fail() { printf 'remote: error: %s\n' "$*" >&2; exit 1; }

usage="usage: team/remote.sh set user@host:/path (or ssh://user@host:port/path) | <dvc command>"
[ $# -ge 1 ] || fail "$usage"
command -v dvc >/dev/null || fail "dvc not found: run \`make install\` and \`source .venv/bin/activate\`"

configure() {
    [ $# -eq 1 ] || fail "$usage"
    local target=$1 user host port path
    if [[ $target =~ ^ssh://(([^@/]+)@)?([^:/]+)(:([0-9]+))?(/.+)$ ]]; then
        user=${BASH_REMATCH[2]} host=${BASH_REMATCH[3]} port=${BASH_REMATCH[5]} path=${BASH_REMATCH[6]}
    elif [[ $target =~ ^(([^@/:]+)@)?([^:/]+):(.+)$ ]]; then
        user=${BASH_REMATCH[2]} host=${BASH_REMATCH[3]} port="" path=${BASH_REMATCH[4]}
    else
        fail "$target: not user@host:/path or ssh://user@host:port/path"
    fi
    [[ $path == /* ]] || fail "$target: the path must be absolute (/srv/dvc/...), not relative to a home folder"
    [[ $target != *[[:space:]]* ]] || fail "$target: no spaces, please"
    local url="ssh://$host${port:+:$port}$path"
    if dvc remote list | awk '{print $1}' | grep -qx "$name"; then
        dvc remote modify "$name" url "$url"
    else
        dvc remote add "$name" "$url"
    fi
    dvc remote default "$name"
    if [ -n "$user" ]; then
        dvc remote modify --local "$name" user "$user"
    fi
    if [ -n "${DVC_SSH_KEYFILE:-}" ]; then
        dvc remote modify --local "$name" keyfile "$DVC_SSH_KEYFILE"
    fi
    say "$name -> $url (default remote, in .dvc/config)${user:+; user $user in .dvc/config.local}"
    say "next: team/remote.sh push (share outputs) or pull (fetch them); commit .dvc/config once"
}

# dvc <args>; on failure one line naming the remote and what to do, instead of DVC's
# "unexpected error" and its support blurb.
run_dvc() {
    local errors status url hint
    url=$(dvc config "remote.$name.url" 2>/dev/null || true)
    errors=$(mktemp)
    trap 'rm -f "$errors"' RETURN
    status=0
    dvc "$@" 2>"$errors" || status=$?
    [ $status -eq 0 ] && return 0
    reason=$(grep -m1 '^ERROR' "$errors" | sed -E -e 's/^ERROR: *//' -e 's/^unexpected error - //' -e 's/^(.+): \1$/\1/' || true)
    case "$reason" in
        *"Permission denied"*) hint="the server refused every key offered: load yours (ssh-add) or name it (DVC_SSH_KEYFILE=~/.ssh/KEY team/remote.sh set ...)" ;;
        *"Host key is not trusted"*) hint="connect once with ssh to accept the server's key into ~/.ssh/known_hosts" ;;
        *"Connect call failed"*|*"Connection lost"*|*"Connection not open"*|*"failed to transfer"*|*"Connection refused"*|*"closed"*|*"failed to push"*|*"failed to pull"*|*"failed to fetch"*)
            hint="the server is unreachable or dropped the connection: once it is back, run the same command again (a file cut short is never kept)" ;;
        *) hint="" ;;
    esac
    [ -n "$reason" ] || reason=$(tail -n 3 "$errors" | tr '\n' ' ')
    fail "dvc $*: remote $name (${url:-not configured}): ${reason}${hint:+; $hint}"
}

if [ "$1" = set ]; then
    shift
    configure "$@"
else
    run_dvc "$@"
fi
