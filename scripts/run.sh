#!/usr/bin/env bash
# Start the receiver and the worker for local development (`make run`):
# find or start a Postgres, migrate it, run both processes until Ctrl-C or
# until one of them dies, then stop everything this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
HL_TAG=run
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

RECEIVER_PID=
WORKER_PID=

# Where the binaries are: make build's folder, unless a test built them elsewhere.
BIN=${HOOKLINE_BIN:-bin}
for bin in receiver worker hookctl; do
	[[ -x $BIN/$bin ]] || hl_die "$BIN/$bin is missing: run 'make build' (or use 'make run', which builds first)"
done

# ensure_hookline_db creates database hookline on 127.0.0.1:PORT unless it exists.
ensure_hookline_db() {
	local port=$1 psql exists
	psql=$(hl_pg_tool psql) || hl_die "psql not found: install the PostgreSQL client (Debian/Ubuntu: apt-get install postgresql-client; macOS: brew install postgresql@15), or set DATABASE_URL"
	exists=$("$psql" -X -qtA -h 127.0.0.1 -p "$port" -U postgres -d postgres \
		-c "SELECT 1 FROM pg_database WHERE datname='hookline'") ||
		hl_die "cannot connect as user postgres to 127.0.0.1:$port (it needs trust auth); set DATABASE_URL instead"
	if [[ $exists != 1 ]]; then
		hl_log "creating database hookline on 127.0.0.1:$port"
		"$psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c 'CREATE DATABASE hookline'
	fi
}

# stop_children asks both processes to shut down gracefully and waits for
# them (the receiver finishes requests in flight, the worker its jobs).
stop_children() {
	local pid
	for pid in $RECEIVER_PID $WORKER_PID; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in $RECEIVER_PID $WORKER_PID; do
		wait "$pid" 2>/dev/null || true
	done
	RECEIVER_PID="" WORKER_PID=""
}

# cleanup runs once, on any exit. It ignores further INT/TERM so a second
# Ctrl-C cannot leave the private cluster running; the processes' own
# shutdown timeouts bound how long it takes.
cleanup() {
	trap - EXIT
	trap '' INT TERM
	stop_children
	hl_stop_private_cluster
}
trap 'cleanup' EXIT
trap 'hl_log "stopping"; cleanup; exit 130' INT
trap 'hl_log "stopping"; cleanup; exit 143' TERM

# 1. The database.
hl_find_database
case $HL_DB_KIND in
env) ;;
probe) ensure_hookline_db "$HL_PROBE_PORT" ;;
private)
	hl_log "reusing the private cluster already running on 127.0.0.1:$HL_DEV_PORT; this run did not start it, so leaves it running (stop it with: pg_ctl -D $(hl_show "$HL_DEV_DATA") stop, as its owner)"
	ensure_hookline_db "$HL_DEV_PORT"
	;;
none)
	hl_start_private_cluster
	DATABASE_URL=$(hl_url "$HL_DEV_PORT")
	export DATABASE_URL
	ensure_hookline_db "$HL_DEV_PORT"
	;;
esac

# 2. Development defaults; anything already in the environment wins.
export STRIPE_WEBHOOK_SECRET=${STRIPE_WEBHOOK_SECRET:-whsec_dev_stripe_secret}
export BANK_WEBHOOK_SECRET=${BANK_WEBHOOK_SECRET:-dev_bank_secret}
export LOG_FORMAT=${LOG_FORMAT:-text}
export RECEIVER_ADDR=${RECEIVER_ADDR:-:8080}
# The worker's admin port serves River UI, which can cancel and delete jobs:
# in development it listens on the loopback interface only.
export WORKER_ADDR=${WORKER_ADDR:-127.0.0.1:9091}

# River UI is served only with a credential. Unless one was given, use the
# development user "dev" with a password generated once into a file that
# .gitignore keeps out of the repository, and only on a loopback address:
# on any other, River UI stays off until real credentials are set.
RIVERUI_PASSWORD_PATH=${HOOKLINE_DEV_RIVERUI_PASSWORD:-.dev/riverui-password}
riverui_dev=""
is_loopback() {
	local host=${1%:*}
	[[ $host == 127.* || $host == localhost || $host == "[::1]" ]]
}
if [[ -z ${RIVERUI_USERNAME:-}${RIVERUI_USERNAME_FILE:-}${RIVERUI_PASSWORD:-}${RIVERUI_PASSWORD_FILE:-}${RIVERUI_TOKEN:-}${RIVERUI_TOKEN_FILE:-} ]]; then
	if is_loopback "$WORKER_ADDR"; then
		if [[ ! -s $RIVERUI_PASSWORD_PATH ]]; then
			mkdir -p "$(dirname "$RIVERUI_PASSWORD_PATH")"
			# 18 random bytes: 24 characters of base64 without / or +.
			(umask 077 && head -c 18 /dev/urandom | base64 | tr '/+' '_-' >"$RIVERUI_PASSWORD_PATH") ||
				hl_die "cannot write River UI's development password to $RIVERUI_PASSWORD_PATH"
			hl_log "generated River UI's development password into $RIVERUI_PASSWORD_PATH"
		fi
		export RIVERUI_USERNAME=dev
		RIVERUI_PASSWORD_FILE=$RIVERUI_PASSWORD_PATH
		[[ $RIVERUI_PASSWORD_FILE == /* ]] || RIVERUI_PASSWORD_FILE=$PWD/$RIVERUI_PASSWORD_FILE
		export RIVERUI_PASSWORD_FILE
		riverui_dev=1
	else
		hl_log "River UI is off: WORKER_ADDR=$WORKER_ADDR is not a loopback address, so the development credentials are not used; set RIVERUI_USERNAME and RIVERUI_PASSWORD (or RIVERUI_TOKEN) to turn it on"
	fi
fi

# 3. The schema.
"$BIN"/hookctl migrate

# 4. The processes. Each one's output goes through a prefixer that ignores
# INT and TERM: on Ctrl-C it must outlive its process, or that process's
# shutdown logs would hit a closed pipe and kill it before it finished.
prefix() {
	trap '' INT TERM
	local line
	while IFS= read -r line || [[ -n $line ]]; do
		printf '[%s] %s\n' "$1" "$line"
	done
}
"$BIN"/receiver > >(prefix receiver) 2>&1 &
RECEIVER_PID=$!
"$BIN"/worker > >(prefix worker) 2>&1 &
WORKER_PID=$!

# 5. How to use it. The URL holds no password in development. The banner
# waits for both processes to answer: it points at the worker's admin
# address (River UI) too, which a user may open at once.
port=${RECEIVER_ADDR##*:}
admin_host=${WORKER_ADDR%:*} admin_port=${WORKER_ADDR##*:}
[[ -n $admin_host && $admin_host != 0.0.0.0 && $admin_host != "[::]" ]] || admin_host=localhost
for _ in $(seq 1 100); do
	curl -fsS -o /dev/null "http://localhost:$port/healthz" 2>/dev/null &&
		curl -fsS -o /dev/null "http://$admin_host:$admin_port/healthz" 2>/dev/null && break
	kill -0 "$RECEIVER_PID" 2>/dev/null && kill -0 "$WORKER_PID" 2>/dev/null || break
	sleep 0.1
done
# hookctl in another terminal needs the same secrets; spell out the dev
# defaults, but never echo a secret that came from the environment.
env_for() {
	local name=$1 dev=$2
	if [[ ${!name} == "$dev" ]]; then printf '%s=%s ' "$name" "$dev"; fi
}
stripe_env=$(env_for STRIPE_WEBHOOK_SECRET whsec_dev_stripe_secret)
bank_env=$(env_for BANK_WEBHOOK_SECRET dev_bank_secret)
# The dev URLs hold no password, but one from the environment might.
shown_url=$(hl_redact "$DATABASE_URL")
url_flag="" demo="make demo"
if [[ $port != 8080 ]]; then
	url_flag=" --url http://localhost:$port" demo="RECEIVER_PORT=$port make demo"
fi
# River UI: its development password is shown, one from the environment
# never is.
riverui_url="http://$admin_host:$admin_port/riverui/"
if [[ -n $riverui_dev ]]; then
	riverui_banner="[run] River UI: $riverui_url (user dev, password $(<"$RIVERUI_PASSWORD_PATH"), kept in $RIVERUI_PASSWORD_PATH)"
elif [[ -n ${RIVERUI_USERNAME:-}${RIVERUI_USERNAME_FILE:-}${RIVERUI_TOKEN:-}${RIVERUI_TOKEN_FILE:-} ]]; then
	riverui_banner="[run] River UI: $riverui_url (with the RIVERUI_* credentials from the environment)"
else
	riverui_banner="[run] River UI: off (no credentials; see above)"
fi
# (No banner if the receiver already died; the loop below reports it.)
kill -0 "$RECEIVER_PID" 2>/dev/null && cat >&2 <<EOF
[run] receiver on $RECEIVER_ADDR (pid $RECEIVER_PID), worker admin on $WORKER_ADDR (pid $WORKER_PID)
[run] DATABASE_URL=$shown_url
$riverui_banner
[run] send events from another terminal:
[run]   ${stripe_env}bin/hookctl send stripe --type charge.succeeded --customer cus_1 --amount 2000$url_flag
[run]   ${bank_env}bin/hookctl send bank --type transfer.settled --account acc_9 --amount-cents 1250$url_flag
[run]   $demo
[run] Ctrl-C stops everything.
EOF

# Run until a signal (handled by the traps) or until either process exits,
# which is a failure: stop the other one and say which died.
while :; do
	for name in receiver worker; do
		pid_var=${name^^}_PID
		if ! kill -0 "${!pid_var}" 2>/dev/null; then
			status=0
			wait "${!pid_var}" 2>/dev/null || status=$?
			printf -v "$pid_var" ''
			if ((status == 0)); then
				hl_log "error: the $name stopped on its own (was it signalled directly?); stopping the rest"
			else
				hl_log "error: the $name exited with status $status; stopping the rest"
			fi
			exit 1
		fi
	done
	wait -n || true
done
