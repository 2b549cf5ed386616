# shellcheck shell=bash
# Helpers shared by scripts/*.sh; source it after setting REPO. Nothing here
# finds a process by name: every PID comes from a pid file we wrote.

STATE="${STATE:-$REPO/.escrowflow}"

# pid_alive PID: the process exists and is not a zombie.
pid_alive() {
	local pid="$1" state
	kill -0 "$pid" 2>/dev/null || return 1
	state="$(sed -e 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# pid_runs PID BINARY: argv[0] of PID is exactly BINARY.
pid_runs() {
	local pid="$1" want="$2" argv0=""
	IFS= read -r -d '' argv0 <"/proc/$pid/cmdline" 2>/dev/null || true
	[ -n "$argv0" ] && [ "$argv0" = "$want" ]
}

# running_pid NAME BINARY: prints the PID from $STATE/NAME.pid when that
# process is alive and runs BINARY; fails otherwise.
running_pid() {
	local pidfile="$STATE/$1.pid" pid
	[ -f "$pidfile" ] || return 1
	pid="$(tr -cd '0-9' <"$pidfile")"
	[ -n "$pid" ] && pid_alive "$pid" && pid_runs "$pid" "$2" || return 1
	printf '%s\n' "$pid"
}

# port_open HOST PORT: something accepts TCP connections on HOST:PORT.
port_open() {
	(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# http_ok HOST PORT PATH: a GET of http://HOST:PORT/PATH answers 200 within
# 5 s (bash's /dev/tcp: no curl needed).
http_ok() {
	local status=""
	status="$(
		exec 2>/dev/null
		exec 3<>"/dev/tcp/$1/$2" || exit 1
		printf 'GET %s HTTP/1.0\r\nHost: %s:%s\r\n\r\n' "$3" "$1" "$2" >&3
		IFS= read -r -t 5 line <&3 && printf '%s' "$line"
	)" || return 1
	case "$status" in
	"HTTP/1."?" 200 "*) return 0 ;;
	*) return 1 ;;
	esac
}

# free_port: prints a TCP port on 127.0.0.1 that nothing listens on (tried
# at random in 20000-49999; it can still be taken before it is bound).
free_port() {
	local p i
	for i in $(seq 1 100); do
		p=$((20000 + RANDOM % 30000))
		if ! port_open 127.0.0.1 "$p"; then
			printf '%s\n' "$p"
			return 0
		fi
	done
	return 1
}
