package ledgertest

// Progress is a snapshot of a ledger's counters while a run goes on, for
// scenarios that chart throughput over time.
type Progress struct {
	// Events are the distinct events recorded so far.
	Events int
	// Attempts are all deliveries so far, and Answered2xx those that got a
	// 2xx (duplicates included).
	Attempts, Answered2xx int
	// NoAnswer are attempts that got no HTTP answer.
	NoAnswer int
}

// Progress returns the ledger's counters now. It is cheap: it copies four
// integers under the ledger's lock.
func (l *Ledger) Progress() Progress {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Progress{Events: len(l.order), Attempts: l.attempts, Answered2xx: len(l.latencies), NoAnswer: l.transport}
}
