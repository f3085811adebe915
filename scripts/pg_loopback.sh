#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback, for the tests and benchmarks of the PostgreSQL
# state store. Installs Debian's `postgresql` package when no server binaries are found.
#   scripts/pg_loopback.sh start DIR    starts a server with its data in DIR; prints its URL
#   scripts/pg_loopback.sh restart DIR  restarts it (tests of workers surviving a restart)
#   scripts/pg_loopback.sh stop DIR     stops it
set -euo pipefail

find_bin() {
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"
    return
  fi
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/pg_ctl" ]; then
      echo "$dir"
      return
    fi
  done
}

BIN="$(find_bin)"
if [ -z "$BIN" ]; then
  echo "installing Debian's postgresql package (the state store's PostgreSQL tests)" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >&2
  BIN="$(find_bin)"
fi
[ -n "$BIN" ] || { echo "no PostgreSQL server binaries found after installing" >&2; exit 1; }

# PostgreSQL refuses to run as root: as root, run it as the `postgres` user.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

cmd="${1:?usage: pg_loopback.sh start|restart|stop DIR}"
DIR="${2:?usage: pg_loopback.sh start|restart|stop DIR}"
case "$cmd" in
  start)
    mkdir -p "$DIR"
    chmod 755 "$DIR"
    if [ "$(id -u)" -eq 0 ]; then
      id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
      chown postgres "$DIR"
    fi
    PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    as_owner "$BIN/initdb" -D "$DIR/data" -U weir --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 \
      || { cat "$DIR/initdb.log" >&2; exit 1; }
    cat >>"$DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR'
max_connections = 300
CONF
    echo "$PORT" >"$DIR/port"
    as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 start >/dev/null \
      || { cat "$DIR/server.log" >&2; exit 1; }
    echo "postgres://weir@127.0.0.1:$PORT/postgres"
    ;;
  restart)
    as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 -m fast restart >/dev/null
    ;;
  stop)
    as_owner "$BIN/pg_ctl" -D "$DIR/data" -w -t 60 -m fast stop >/dev/null || true
    ;;
  *)
    echo "unknown command $cmd: start, restart or stop" >&2
    exit 2
    ;;
esac
