#!/usr/bin/env bash
# Send signed sample events to the pipeline that `make run` started (new,
# replayed, tampered, wrongly signed), then print the balances they produced.
set -euo pipefail
cd "$(dirname "$0")/.."
HL_TAG=demo
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

[[ -x bin/hookctl ]] || hl_die "bin/hookctl is missing: run 'make build' (or use 'make demo', which builds first)"

# The same secrets as run.sh, so the signatures match unless we mean them not to.
export STRIPE_WEBHOOK_SECRET=${STRIPE_WEBHOOK_SECRET:-whsec_dev_stripe_secret}
export BANK_WEBHOOK_SECRET=${BANK_WEBHOOK_SECRET:-dev_bank_secret}
url=http://localhost:${RECEIVER_PORT:-8080}

if ! curl -fsS -o /dev/null --max-time 3 "$url/healthz" 2>/dev/null; then
	hl_die "the receiver is not reachable at $url; start it with make run (in another terminal)"
fi

# send EXPECTED_STATUS WHAT ARGS... posts one event and checks the answer;
# hookctl prints "<source> <type> <id> -> <status> <body>".
failed=0
send() {
	local want=$1 what=$2 out got
	shift 2
	out=$(bin/hookctl send "$@" --url "$url")
	got=$(sed -n 's/.* -> \([0-9]*\) .*/\1/p' <<<"$out")
	if [[ $got == "$want" ]]; then
		printf '  ok   %-34s %s\n' "$what" "$out"
	else
		printf '  FAIL %-34s %s (expected %s)\n' "$what" "$out" "$want"
		failed=1
	fi
}

# A fixed id, unique per run, so the replay below is a true replay.
id=evt_demo_$(date +%Y%m%d%H%M%S)_$$
echo "sending events to $url:"
send 200 "stripe charge (new)" stripe --type charge.succeeded --customer cus_demo --amount 2000 --id "$id"
send 200 "same stripe charge (replay)" stripe --type charge.succeeded --customer cus_demo --amount 2000 --id "$id"
send 200 "bank transfer settled" bank --type transfer.settled --account acc_demo --amount-cents 1250
send 200 "bank transfer reversed" bank --type transfer.reversed --account acc_demo --amount-cents 250
send 400 "bank transfer, body tampered" bank --type transfer.settled --account acc_demo --amount-cents 1000000 --tamper
send 400 "stripe charge, wrong secret" stripe --type charge.succeeded --customer cus_demo --amount 1000000 --secret wrong

# The worker applies events asynchronously; give it a moment.
sleep 2
hl_find_database
[[ $HL_DB_KIND != none ]] || hl_die "found no database to read balances from: set DATABASE_URL to the one make run uses"
psql=$(hl_pg_tool psql) || hl_die "psql not found: install the PostgreSQL client (Debian/Ubuntu: apt-get install postgresql-client; macOS: brew install postgresql@15)"
echo
echo "balances (each run adds 2000 to stripe:cus_demo and 1000 to bank:acc_demo;"
echo "the replay and the rejected events add nothing):"
"$psql" -X "$DATABASE_URL" -c 'SELECT account, balance_cents FROM account_balances ORDER BY account'

((failed == 0)) || hl_die "some answers were not as expected (see FAIL above)"
