# shellcheck shell=bash
# Shared by run.sh and demo.sh, so both pick the same development database.
# Source it; it defines functions and a few settings, and runs nothing.

# The Postgres that `make run` looks for first; the probe port is a variable
# so the private-cluster fallback can be exercised without stopping it.
HL_PROBE_PORT=${HOOKLINE_DEV_PG_PROBE_PORT:-5432}
# The private cluster, started by run.sh when no other Postgres is available.
HL_DEV_PORT=${HOOKLINE_DEV_PG_PORT:-55432}

hl_log() { printf '[%s] %s\n' "${HL_TAG:-hookline}" "$*" >&2; }
hl_die() {
	hl_log "error: $*"
	exit 1
}

# hl_url PORT prints the URL of the hookline database on 127.0.0.1:PORT. It
# holds no password: both local options use trust authentication.
hl_url() { printf 'postgres://postgres@127.0.0.1:%s/hookline?sslmode=disable' "$1"; }

# hl_pg_bindir prints a folder holding initdb and pg_ctl: PATH first, then the
# newest /usr/lib/postgresql/<version>/bin (Debian and Ubuntu keep the server
# programs there, off PATH).
hl_pg_bindir() {
	local initdb pgctl dir
	initdb=$(command -v initdb || true)
	pgctl=$(command -v pg_ctl || true)
	if [[ -n $initdb && -n $pgctl ]]; then
		dirname "$initdb"
		return 0
	fi
	while IFS= read -r dir; do
		if [[ -x $dir/initdb && -x $dir/pg_ctl ]]; then
			printf '%s\n' "$dir"
			return 0
		fi
	done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -rV)
	return 1
}

# hl_pg_tool NAME prints the path of a client program (psql, pg_isready):
# PATH first, then next to the server programs.
hl_pg_tool() {
	local dir
	if command -v "$1"; then return 0; fi
	dir=$(hl_pg_bindir) && [[ -x $dir/$1 ]] && printf '%s\n' "$dir/$1"
}

# hl_pg_ready PORT succeeds if a Postgres accepts connections on 127.0.0.1:PORT.
hl_pg_ready() {
	local isready
	isready=$(hl_pg_tool pg_isready) || return 1
	"$isready" -q -h 127.0.0.1 -p "$1" -U postgres -d postgres 2>/dev/null
}

# hl_find_database sets HL_DB_KIND and, unless it is "none", exports
# DATABASE_URL. It never starts anything:
#   env     - DATABASE_URL was already set; it wins.
#   probe   - a Postgres answers on 127.0.0.1:$HL_PROBE_PORT (usually the system one).
#   private - run.sh's private cluster answers on 127.0.0.1:$HL_DEV_PORT.
#   none    - none of these; run.sh then starts the private cluster.
# shellcheck disable=SC2034 # HL_DB_KIND is read by the scripts that source this.
hl_find_database() {
	if [[ -n ${DATABASE_URL:-} ]]; then
		HL_DB_KIND="env"
	elif hl_pg_ready "$HL_PROBE_PORT"; then
		HL_DB_KIND=probe
		DATABASE_URL=$(hl_url "$HL_PROBE_PORT")
	elif hl_pg_ready "$HL_DEV_PORT"; then
		HL_DB_KIND=private
		DATABASE_URL=$(hl_url "$HL_DEV_PORT")
	else
		HL_DB_KIND=none
		return 0
	fi
	export DATABASE_URL
}
