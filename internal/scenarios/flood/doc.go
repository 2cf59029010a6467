// Package flood holds the load scenarios of Hookline's reliability suite
// (the flood soak and the duplicate storm of docs/RELIABILITY.md). They run
// the real binaries against a real Postgres through internal/clustertest,
// keep the provider's record with internal/ledgertest, and hold the database
// to the invariant at the end: every acknowledged event is stored once and
// applied once, nothing refused is stored, and no job is left unfinished.
//
//   - The flood soak drives one receiver (batch mode, default settings) and
//     two workers with a closed loop of 64 clients sending real-looking
//     traffic (ledgertest.RealTraffic: about 30% duplicates, a third of them
//     concurrent, 5% tampered, 2% stale), for HOOKLINE_SOAK (default 10s;
//     `make soak` runs 5m). It samples every process's RSS each second and
//     reports throughput, p99, peak RSS, the RSS trend (middle third against
//     last third, and a least-squares slope in MB/min) and the time the
//     workers need to drain the backlog once the load stops. On runs of at
//     least a minute it fails if memory grows: a generous bound, so that it
//     catches a leak and never the noise of a shared 2-core machine.
//   - The duplicate storm releases 500 deliveries of one event at once,
//     spread over three receivers, for a bank (HMAC) event and a Stripe
//     event. Every delivery must be acknowledged, and the database must hold
//     one inbox row, one job and one effect, with the 499 others counted in
//     inbox_duplicates and logged as duplicates by the receivers.
//
// No assertion depends on how fast the machine is: throughput, latency and
// drain time are reported, not required. With HOOKLINE_REPORT_DIR set, each
// scenario writes its report there as JSON (flood_soak.json,
// duplicate_storm_<source>.json) for docs/RELIABILITY.md.
package flood
