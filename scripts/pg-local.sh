#!/usr/bin/env bash
# A throwaway PostgreSQL server for det's tests and benchmarks: initdb +
# pg_ctl in a fresh temporary folder, as an unprivileged user (nobody when
# run as root), listening only on a unix socket in that folder (no TCP).
#
#   scripts/pg-local.sh start STATE [--durable]  # prints the det db URL
#   scripts/pg-local.sh stop STATE                # stops it, removes the folder
#   scripts/pg-local.sh pause STATE | resume STATE  # stop/start, data kept
#
# STATE is a file this script writes (the folder and the URL); `stop` reads
# it. Tests run with fsync off (fast, nothing to protect); --durable keeps
# PostgreSQL's defaults (fsync, synchronous_commit on) for benchmarks.
set -euo pipefail

cmd=${1:-}; state=${2:-}
if [[ -z "$cmd" || -z "$state" ]]; then
  echo "usage: $0 start|stop|pause|resume STATE [--durable]" >&2; exit 2
fi

bindir=""
for d in /usr/lib/postgresql/*/bin; do [[ -x "$d/initdb" ]] && bindir=$d; done
if [[ -z "$bindir" ]] && command -v initdb >/dev/null; then
  bindir=$(dirname "$(command -v initdb)")
fi

as_owner() {  # runs "$@" as the server's owner
  if [[ $(id -u) -eq 0 ]]; then
    setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
  else
    "$@"
  fi
}

read_state() {
  [[ -f "$state" ]] || { echo "pg-local: no state file $state" >&2; exit 1; }
  dir=$(sed -n 1p "$state")
}

pg_ctl_() { as_owner "$bindir/pg_ctl" -D "$dir/data" -w -t 60 "$@"; }

case "$cmd" in
  start)
    if [[ -z "$bindir" ]]; then
      echo "pg-local: PostgreSQL server binaries not found (apt-get install postgresql-15)" >&2
      exit 1
    fi
    dir=$(mktemp -d /tmp/det-pg.XXXXXX)
    chmod 755 "$dir"
    if [[ $(id -u) -eq 0 ]]; then chown nobody:nogroup "$dir"; fi
    printf '%s\n' "$dir" > "$state"
    cd "$dir"  # a folder the owner can read
    as_owner "$bindir/initdb" -D "$dir/data" -U det --auth=trust -E UTF8 \
      --locale=C >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    opts="-c listen_addresses='' -c unix_socket_directories='$dir' -c max_connections=40"
    if [[ "${3:-}" != "--durable" ]]; then
      opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    printf '%s\n' "$opts" > "$dir/opts"
    pg_ctl_ -o "$opts" -l "$dir/server.log" start >/dev/null ||
      { cat "$dir/server.log" >&2; exit 1; }
    url="postgresql://det@/postgres?host=$dir"
    printf '%s\n' "$url" >> "$state"
    echo "$url"
    ;;
  pause)
    read_state; pg_ctl_ -m fast stop >/dev/null ;;
  resume)
    read_state
    pg_ctl_ -o "$(cat "$dir/opts")" -l "$dir/server.log" start >/dev/null ;;
  stop)
    [[ -f "$state" ]] || exit 0
    read_state
    if [[ -n "$dir" && -d "$dir" && "$dir" == /tmp/det-pg.* ]]; then
      pg_ctl_ -m immediate stop >/dev/null 2>&1 || true
      rm -rf "$dir"
    fi
    rm -f "$state"
    ;;
  *) echo "pg-local: unknown command $cmd" >&2; exit 2 ;;
esac
