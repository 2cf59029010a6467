// Package faults holds the fault-injection scenarios of Hookline's
// reliability suite (the database outage, crash and deploy scenarios of
// docs/RELIABILITY.md): each runs the real receiver and worker binaries on a
// fresh database under a mixed flood, breaks something in the middle, and
// then holds the database to the promise with the provider's own record of
// what was sent and answered (internal/ledgertest):
//
//   - the database goes away: its backends are terminated and new
//     connections refused for a few seconds;
//   - workers are killed with SIGKILL at random moments, several times;
//   - the receiver is killed with SIGKILL and restarted on its address;
//   - a rolling deploy stops every receiver and worker with SIGTERM, one
//     at a time, the receivers drained from the load balancer first.
//
// After each fault the flood goes on for a while, then stops, the
// unacknowledged events are retried as providers would, the queue drains,
// and the ledger checks that every acknowledged event is stored and applied
// exactly once, and nothing else is. Every process's output is checked for
// secrets and body text. The scenarios run in parallel, each on its own
// database, in a short form meant for CI:
//
//	go test -count=1 -v ./internal/scenarios/faults
//
// HOOKLINE_REPORT_DIR=dir saves each scenario's figures as JSON, for
// docs/RELIABILITY.md; HOOKLINE_FAULTS_SEED=n repeats a run's random choices
// (the seed is logged).
package faults
