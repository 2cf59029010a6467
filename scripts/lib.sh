# shellcheck shell=bash
# Shared by run.sh, demo.sh and with-test-db.sh, so `make run`, `make demo`
# and `make test` find, or start, the same development database. Source it;
# it defines functions and a few settings, and runs nothing.

# The repository, wherever the sourcing script was started from.
HL_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)

# The Postgres looked for first; the probe port is a variable so the
# private-cluster fallback can be exercised without stopping it.
HL_PROBE_PORT=${HOOKLINE_DEV_PG_PROBE_PORT:-5432}
# The private cluster, started when no other Postgres is available: its port
# and its data folder (its log is the folder's name plus .log). Both are
# variables so that scripts/check-test-db.sh can start a throwaway cluster
# without touching a developer's .dev/pg on 55432.
HL_DEV_PORT=${HOOKLINE_DEV_PG_PORT:-55432}
HL_DEV_DATA=${HOOKLINE_DEV_PG_DATA:-$HL_ROOT/.dev/pg}
[[ $HL_DEV_DATA == /* ]] || HL_DEV_DATA=$PWD/$HL_DEV_DATA
HL_DEV_LOG=$HL_DEV_DATA.log
# `make test` holds up to ~80 connections at once, and `make run` may share
# the cluster meanwhile. initdb picks 100 on most machines but fewer where
# shared memory is scarce, so say it rather than depend on it.
HL_DEV_MAX_CONNECTIONS=100

# How the user bypasses all of this, for the error messages: the sourcing
# script may set both before sourcing (with-test-db.sh names TEST_DATABASE_URL).
HL_URL_VAR=${HL_URL_VAR:-DATABASE_URL}
HL_URL_HINT=${HL_URL_HINT:-$HL_URL_VAR=postgres://USER:PASSWORD@HOST:PORT/DB}

# Set by hl_start_private_cluster, read by hl_stop_private_cluster.
HL_PG_BINDIR=
HL_CLUSTER_STARTED=

hl_log() { printf '[%s] %s\n' "${HL_TAG:-hookline}" "$*" >&2; }
hl_die() {
	hl_log "error: $*"
	exit 1
}

# hl_show PATH prints PATH relative to the repository when it is inside it,
# so messages say .dev/pg rather than a long absolute path.
hl_show() {
	if [[ $1 == "$HL_ROOT"/* ]]; then
		printf '%s\n' "${1#"$HL_ROOT"/}"
	else
		printf '%s\n' "$1"
	fi
}

# hl_url PORT [DB] prints the URL of database DB (default hookline) on
# 127.0.0.1:PORT. It holds no password: both local options use trust
# authentication.
hl_url() { printf 'postgres://postgres@127.0.0.1:%s/%s?sslmode=disable' "$1" "${2:-hookline}"; }

# hl_redact URL prints URL with its password, if any, replaced by ***: a
# URL from the environment may hold one, and messages end up in CI logs.
hl_redact() { sed -E 's#(://[^:/@]*):[^@/]*@#\1:***@#' <<<"$1"; }

# hl_pg_bindir prints a folder holding initdb and pg_ctl: HOOKLINE_PG_BINDIR
# if it is set (and nothing else, so a wrong one is reported, not bypassed);
# else PATH; else the newest of the folders where packages put them off PATH:
# Debian and Ubuntu (/usr/lib/postgresql/<version>/bin), the PGDG RPMs
# (/usr/pgsql-<version>/bin), Homebrew's keg-only postgresql@<version>.
hl_pg_bindir() {
	local initdb pgctl dir
	if [[ -n ${HOOKLINE_PG_BINDIR:-} ]]; then
		[[ -x $HOOKLINE_PG_BINDIR/initdb && -x $HOOKLINE_PG_BINDIR/pg_ctl ]] || return 1
		printf '%s\n' "$HOOKLINE_PG_BINDIR"
		return 0
	fi
	initdb=$(command -v initdb || true)
	pgctl=$(command -v pg_ctl || true)
	if [[ -n $initdb && -n $pgctl ]]; then
		dirname "$initdb"
		return 0
	fi
	# A pattern that matches nothing stays as it is and fails the -x test.
	while IFS= read -r dir; do
		if [[ -x $dir/initdb && -x $dir/pg_ctl ]]; then
			printf '%s\n' "$dir"
			return 0
		fi
	done < <(printf '%s\n' /usr/lib/postgresql/*/bin /usr/pgsql-*/bin \
		/opt/homebrew/opt/postgresql@*/bin /usr/local/opt/postgresql@*/bin | sort -rV)
	return 1
}

# hl_pg_tool NAME prints the path of a client program (psql, pg_isready):
# PATH first, then next to the server programs.
hl_pg_tool() {
	local dir
	if command -v "$1"; then return 0; fi
	dir=$(hl_pg_bindir) && [[ -x $dir/$1 ]] && printf '%s\n' "$dir/$1"
}

# hl_pg_ready PORT succeeds if a Postgres accepts connections on
# 127.0.0.1:PORT. Without pg_isready (a server in a container, no client
# programs installed), a port that accepts TCP connections is the best sign
# there is; treating it as absent would start a second server for nothing.
hl_pg_ready() {
	local isready
	if isready=$(hl_pg_tool pg_isready); then
		"$isready" -q -h 127.0.0.1 -p "$1" -U postgres -d postgres 2>/dev/null
	else
		(: <>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
	fi
}

# hl_find_server sets HL_DB_KIND and, unless it is "none", HL_DB_PORT. It
# never starts anything:
#   probe   - a Postgres answers on 127.0.0.1:$HL_PROBE_PORT (usually the system one).
#   private - the private cluster answers on 127.0.0.1:$HL_DEV_PORT; this
#             script did not start it, so must leave it running.
#   none    - neither; the caller may start the private cluster.
# shellcheck disable=SC2034 # HL_DB_KIND and HL_DB_PORT are read by the scripts that source this.
hl_find_server() {
	HL_DB_PORT=
	if hl_pg_ready "$HL_PROBE_PORT"; then
		HL_DB_KIND=probe HL_DB_PORT=$HL_PROBE_PORT
	elif hl_pg_ready "$HL_DEV_PORT"; then
		HL_DB_KIND=private HL_DB_PORT=$HL_DEV_PORT
	else
		HL_DB_KIND=none
	fi
}

# hl_find_database is hl_find_server for the programs themselves (run.sh,
# demo.sh): DATABASE_URL, if set, wins (HL_DB_KIND=env); otherwise it is
# exported as the hookline database on the server found.
hl_find_database() {
	if [[ -n ${DATABASE_URL:-} ]]; then
		HL_DB_KIND="env"
		return 0
	fi
	hl_find_server
	[[ $HL_DB_KIND != none ]] || return 0
	DATABASE_URL=$(hl_url "$HL_DB_PORT")
	export DATABASE_URL
}

# hl_as_pg_owner runs a command as the owner of the private cluster. initdb
# and postgres refuse to run as root, so root hands them to the postgres user.
hl_as_pg_owner() {
	if ((EUID != 0)); then
		"$@"
	elif command -v runuser >/dev/null; then
		runuser -u postgres -- "$@"
	else
		su postgres -s /bin/bash -c "$(printf '%q ' "$@")"
	fi
}

# hl_start_private_cluster creates (once) and starts the cluster in
# $HL_DEV_DATA, listening only on 127.0.0.1:$HL_DEV_PORT with its socket in
# that folder, so it touches nothing outside it. It sets HL_DB_PORT and
# HL_CLUSTER_STARTED, so that hl_stop_private_cluster stops it again; the
# caller must arrange for that to run on every exit (a trap).
hl_start_private_cluster() {
	local data log looked
	data=$(hl_show "$HL_DEV_DATA") log=$(hl_show "$HL_DEV_LOG")
	looked="PATH, /usr/lib/postgresql/*/bin, /usr/pgsql-*/bin and Homebrew's opt/postgresql@*/bin"
	[[ -z ${HOOKLINE_PG_BINDIR:-} ]] || looked="HOOKLINE_PG_BINDIR=$HOOKLINE_PG_BINDIR"
	HL_PG_BINDIR=$(hl_pg_bindir) || hl_die "no Postgres at 127.0.0.1:$HL_PROBE_PORT, and no initdb and pg_ctl to start a private one (looked in $looked).
  Install PostgreSQL's server programs: Debian/Ubuntu: apt-get install postgresql; Fedora/RHEL: dnf install postgresql-server; macOS: brew install postgresql@15.
  Or start a server on 127.0.0.1:5432 with a 'postgres' user and trust auth,
  or set $HL_URL_HINT"

	# The socket path must fit in a sockaddr_un (107 bytes).
	local sock="$HL_DEV_DATA/.s.PGSQL.$HL_DEV_PORT"
	((${#sock} <= 107)) || hl_die "the path is too long for a Unix socket in $data ($sock); set $HL_URL_VAR instead"

	mkdir -p "$(dirname "$HL_DEV_DATA")"
	if ((EUID == 0)); then
		id postgres >/dev/null 2>&1 || hl_die "running as root, and initdb/postgres refuse to run as root; there is no 'postgres' OS user to run them as.
  Run this as a normal user, create the user (useradd --system postgres), or set $HL_URL_VAR"
		mkdir -p "$HL_DEV_DATA"
		touch "$HL_DEV_LOG"
		chown postgres: "$HL_DEV_LOG"
		if [[ $(stat -c %U "$HL_DEV_DATA") != postgres ]]; then
			chown -R postgres: "$HL_DEV_DATA"
		fi
		hl_as_pg_owner test -w "$HL_DEV_DATA" || hl_die "the postgres OS user cannot write $data (is a folder above it closed to it?); set $HL_URL_VAR instead"
	fi

	if [[ ! -s $HL_DEV_DATA/PG_VERSION ]]; then
		hl_log "creating a private cluster in $data ($HL_PG_BINDIR/initdb)"
		# C locale and UTF-8: a locale missing from the machine cannot break initdb.
		hl_as_pg_owner "$HL_PG_BINDIR/initdb" -D "$HL_DEV_DATA" -U postgres --auth=trust \
			--encoding=UTF8 --no-locale >>"$HL_DEV_LOG" 2>&1 ||
			hl_die "initdb failed; see $log"
	fi

	if hl_as_pg_owner "$HL_PG_BINDIR/pg_ctl" -D "$HL_DEV_DATA" status >/dev/null 2>&1; then
		hl_die "the private cluster in $data is running but not answering on 127.0.0.1:$HL_DEV_PORT; stop it with: $HL_PG_BINDIR/pg_ctl -D $data stop"
	fi
	hl_log "starting the private cluster in $data on 127.0.0.1:$HL_DEV_PORT (log: $log)"
	# Set before starting, so a start that half-succeeds is still stopped.
	HL_CLUSTER_STARTED=1
	hl_as_pg_owner "$HL_PG_BINDIR/pg_ctl" -D "$HL_DEV_DATA" -l "$HL_DEV_LOG" -w -t 60 \
		-o "-c listen_addresses=127.0.0.1 -p $HL_DEV_PORT -k '$HL_DEV_DATA' -c max_connections=$HL_DEV_MAX_CONNECTIONS" \
		start >/dev/null ||
		{
			tail -n 20 "$HL_DEV_LOG" >&2 || true
			hl_die "the private cluster did not start; see $log"
		}
	HL_DB_PORT=$HL_DEV_PORT
}

# hl_other_clients prints how many client connections the private cluster
# has besides the one asking; empty if it cannot tell.
hl_other_clients() {
	local psql
	psql=$(hl_pg_tool psql) || return 0
	"$psql" -X -qtA -h 127.0.0.1 -p "$HL_DEV_PORT" -U postgres -d postgres -c \
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()" \
		2>/dev/null || true
}

# hl_stop_private_cluster stops the private cluster if this script started
# it, and does nothing otherwise. Both `make run` and `make test` may use a
# cluster the other started; if clients are still connected once this
# script's own have gone (their backends take a moment to exit), another
# one is using it, so it is left running, and the message says how to stop it.
hl_stop_private_cluster() {
	[[ -n $HL_CLUSTER_STARTED ]] || return 0
	HL_CLUSTER_STARTED=
	local data others
	data=$(hl_show "$HL_DEV_DATA")
	for _ in {1..15}; do
		others=$(hl_other_clients)
		[[ $others == [1-9]* ]] || break
		sleep 0.2
	done
	if [[ $others == [1-9]* ]]; then
		hl_log "leaving the private cluster running: $others other client(s) still use it; stop it with: $HL_PG_BINDIR/pg_ctl -D $data stop (as its owner)"
		return 0
	fi
	hl_log "stopping the private cluster"
	hl_as_pg_owner "$HL_PG_BINDIR/pg_ctl" -D "$HL_DEV_DATA" -m fast -w stop >/dev/null ||
		hl_log "warning: could not stop the private cluster; try: $HL_PG_BINDIR/pg_ctl -D $data stop (as its owner)"
}
