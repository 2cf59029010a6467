#!/usr/bin/env bash
# Check that scripts/with-test-db.sh, which `make test` runs the tests
# through, works on a machine with no Postgres on 127.0.0.1:5432: it must
# start a private cluster, give it to the tests, and stop it afterwards,
# whether the tests pass, fail or are interrupted; and it must leave alone a
# cluster that it did not start. CI runs this (.ci/run); so does
# `make test-db-check`.
#
# It touches neither the Postgres on 5432 nor a developer's .dev/pg on 55432:
# the probe port is a closed one, and the private cluster is a throwaway one
# in a temporary folder, on a free port.
set -euo pipefail
cd "$(dirname "$0")/.."

# closed_port FROM prints the first port from FROM up that nothing listens on.
closed_port() {
	local port
	for ((port = $1; port < $1 + 100; port++)); do
		if ! (: <>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			printf '%s\n' "$port"
			return 0
		fi
	done
	return 1
}

# The environment of every run below, and of lib.sh as sourced here. A
# start that depends on the process id keeps two concurrent checks apart.
unset TEST_DATABASE_URL HOOKLINE_PG_BINDIR
base=$((55400 + $$ % 50 * 2))
HOOKLINE_DEV_PG_PROBE_PORT=$(closed_port "$base")
HOOKLINE_DEV_PG_PORT=$(closed_port $((HOOKLINE_DEV_PG_PROBE_PORT + 1)))
# Short, not $TMPDIR: the cluster's socket path must fit in 107 bytes.
tmp=$(mktemp -d /tmp/hookline-check-test-db.XXXXXX)
# The postgres OS user, which runs the cluster when this runs as root, must
# be able to reach the data folder inside.
chmod 755 "$tmp"
HOOKLINE_DEV_PG_DATA=$tmp/pg
export HOOKLINE_DEV_PG_PROBE_PORT HOOKLINE_DEV_PG_PORT HOOKLINE_DEV_PG_DATA
HL_TAG="check-test-db"
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

psql=$(hl_pg_tool psql) || hl_die "psql not found; this check needs the PostgreSQL client"
holder=

# Whatever happens, leave no cluster and no folder behind.
# shellcheck disable=SC2317 # only the trap calls it
cleanup() {
	[[ -z $holder ]] || kill "$holder" 2>/dev/null || true
	if [[ -e $HL_DEV_DATA/postmaster.pid ]]; then
		hl_as_pg_owner "$(hl_pg_bindir)/pg_ctl" -D "$HL_DEV_DATA" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$tmp"
}
trap 'cleanup' EXIT

out=$tmp/out
fail() {
	hl_log "FAIL: $*"
	sed 's/^/    | /' "$out" >&2 || true
	exit 1
}
# run EXPECTED_STATUS COMMAND... runs with-test-db.sh COMMAND into $out.
run() {
	local want=$1 got=0
	shift
	scripts/with-test-db.sh "$@" >"$out" 2>&1 || got=$?
	((got == want)) || fail "with-test-db.sh $* exited with status $got, expected $want"
}
expect() { grep -qF -- "$1" "$out" || fail "the output does not say: $1"; }
is_up() { hl_pg_ready "$HL_DEV_PORT"; }
stopped() {
	! is_up && [[ ! -e $HL_DEV_DATA/postmaster.pid ]]
}
ok() { hl_log "ok: $*"; }

hl_log "probe port $HL_PROBE_PORT (closed), private cluster on $HL_DEV_PORT in $HL_DEV_DATA"
hl_pg_ready "$HL_PROBE_PORT" && hl_die "port $HL_PROBE_PORT answers; it should be closed"

# 1. No Postgres and no server programs: say what to install, start nothing.
HOOKLINE_PG_BINDIR=$tmp/nothing-here run 1 true
expect "Install PostgreSQL's server programs: Debian/Ubuntu: apt-get install postgresql"
expect "TEST_DATABASE_URL="
[[ ! -e $HL_DEV_DATA/PG_VERSION ]] || fail "a cluster was created without server programs"
ok "with no Postgres and no initdb, it says what to install"

# 2. Start, use (a real test, through internal/pgtest), stop.
run 0 "${GO:-go}" test -count=1 -v -run '^TestNewDBIsMigratedAndDroppedAfterItsTest$' ./internal/pgtest
expect "no Postgres answers on 127.0.0.1:$HL_PROBE_PORT, nor the private cluster on 127.0.0.1:$HL_DEV_PORT"
expect "using the private cluster on 127.0.0.1:$HL_DEV_PORT ($HL_DEV_DATA), which this run started"
expect "--- PASS: TestNewDBIsMigratedAndDroppedAfterItsTest"
expect "stopping the private cluster"
stopped || fail "the private cluster is still running after the tests"
ok "it started a private cluster, ran a test against it, and stopped it"

# 3. The tests' URL is the private cluster's maintenance database.
query="SELECT current_setting('port') || ' ' || current_setting('data_directory') || ' ' || current_database()"
# shellcheck disable=SC2016 # $TEST_DATABASE_URL is for the inner shell
run 0 bash -c '"$1" -X -qtA -d "$TEST_DATABASE_URL" -c "$2"' _ "$psql" "$query"
expect "$HL_DEV_PORT $HL_DEV_DATA postgres"
stopped || fail "the private cluster is still running after the query"
ok "TEST_DATABASE_URL is the private cluster's postgres database"

# 4. Tests that fail: the status comes through, and the cluster is stopped.
run 3 bash -c 'exit 3'
expect "stopping the private cluster"
stopped || fail "the private cluster is still running after a failure"
ok "a failing command keeps its status, and the cluster is stopped"

# 5. Ctrl-C: the terminal signals the whole foreground process group, so the
# run gets a process group of its own (set -m) and the group is signalled.
set -m
scripts/with-test-db.sh sleep 60 >"$out" 2>&1 &
pid=$!
set +m
for _ in {1..100}; do
	is_up && break
	sleep 0.1
done
is_up || fail "the private cluster did not come up for the interrupted run"
kill -INT -- "-$pid"
status=0
wait "$pid" || status=$?
((status == 130)) || fail "an interrupted run exited with status $status, expected 130"
expect "stopping the private cluster"
stopped || fail "the private cluster is still running after Ctrl-C"
ok "on Ctrl-C it stops the cluster it started"

# 6. A cluster that was already running is used and left running.
hl_start_private_cluster
run 0 true
expect "using the private cluster already running on 127.0.0.1:$HL_DEV_PORT ($HL_DEV_DATA), and leaving it running"
is_up || fail "the private cluster that was already running was stopped"
hl_stop_private_cluster
stopped || fail "could not stop the private cluster after step 6"
ok "it leaves running a cluster that it did not start"

# 7. A cluster it started, but that something else (make run, say) still
# uses when the tests end, is left running for it. The command leaves a
# psql session behind, and returns once the server has it.
cat >"$tmp/hold.sh" <<'EOF'
set -euo pipefail
"$1" -X -q -d "$TEST_DATABASE_URL" -c 'SELECT pg_sleep(60)' >/dev/null 2>&1 &
echo "holder $!"
for _ in {1..100}; do
	n=$("$1" -X -qtA -d "$TEST_DATABASE_URL" -c "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)'")
	[[ $n == 1 ]] && exit 0
	sleep 0.1
done
echo "the holding session did not show up"
exit 1
EOF
run 0 bash "$tmp/hold.sh" "$psql"
holder=$(sed -n 's/^holder //p' "$out")
expect "leaving the private cluster running: 1 other client(s) still use it"
is_up || fail "the private cluster was stopped under another client"
kill "$holder"
holder=
hl_as_pg_owner "$(hl_pg_bindir)/pg_ctl" -D "$HL_DEV_DATA" -m fast -w stop >/dev/null
ok "it leaves running a cluster that another client still uses"

hl_log "all checks passed"
