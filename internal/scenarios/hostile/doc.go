// Package hostile is the hostile-input scenario of Hookline's reliability
// suite (docs/RELIABILITY.md, and the hostile-input section of
// docs/SECURITY.md). It runs the real receiver binary against a real
// Postgres through internal/clustertest and sends it what an attacker or a
// broken client would: bodies over the limit (with and without
// Content-Length), slowloris headers and bodies, huge and numerous headers,
// invalid UTF-8, 100,000 nested brackets, ids of the wrong kind under a
// valid signature, compressed bodies, signature headers with thousands of
// entries, path traversal in the source name, every method but POST, and
// addresses outside a source's allowlist.
//
// Each case checks a clear status and message, that nothing was stored
// (no inbox row, no process_event job), and, through the cluster's log
// check, that no secret and no body text reached any log line. Requests Go's
// client would refuse or repair are written on a raw net.Conn.
//
// The slow-client cases run the receiver with 1 s header and 2 s read
// timeouts (RECEIVER_READ_HEADER_TIMEOUT, RECEIVER_READ_TIMEOUT) and assert
// that the server, not the client, ends each slow connection, and that
// normal deliveries made while 50 slow connections are open all get 200.
// They never assert a latency.
//
//	go test -race -count=1 ./internal/scenarios/hostile
package hostile
