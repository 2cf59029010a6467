// Package ordering holds scenarios that prove ordered handlers
// (hooklinetype.HandlerOpts.Ordered) across worker processes: the events of
// one object never run their handlers at once, the newest state wins, and a
// worker killed with SIGKILL in the middle of an ordered handler neither
// skips its event nor applies it twice.
//
// The worker processes are this package's own test binary, started again
// with ORDER_WORKER_DB set: TestMain then runs a River client with
// Hookline's real dispatch worker and a test handler that records when it
// enters and leaves, instead of running tests. The scenarios take a minute:
// a killed worker's job waits for River's rescuer, which runs every 30s.
package ordering
