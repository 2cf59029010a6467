package ledgertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Report is what a run did and whether the database kept the promise.
type Report struct {
	Scenario string `json:"scenario"`
	// Events are the distinct events made, by kind.
	Events   int `json:"events"`
	Valid    int `json:"valid"`
	Tampered int `json:"tampered"`
	Stale    int `json:"stale"`
	// Replayed are captured deliveries sent again with changed headers.
	Replayed int `json:"replayed,omitempty"`
	// Attempts are all deliveries; Statuses counts their answers, and
	// NoAnswer the attempts that got none (refused, reset, timed out).
	Attempts int         `json:"attempts"`
	Statuses map[int]int `json:"statuses"`
	NoAnswer int         `json:"no_answer"`
	Acked    int         `json:"acked"`
	// DuplicateAcks are 2xx answers to an event already acknowledged:
	// the duplicates the receiver absorbed.
	DuplicateAcks int `json:"duplicate_acks"`
	// Stored are inbox rows; StoredUnacked those whose sender never saw
	// a 2xx (the answer was lost): allowed, if applied once.
	Stored        int            `json:"stored"`
	StoredUnacked int            `json:"stored_unacked"`
	Effects       int            `json:"effects"`
	Jobs          map[string]int `json:"jobs"`
	P50Millis     float64        `json:"p50_ms"`
	P99Millis     float64        `json:"p99_ms"`
	// Extra holds a scenario's own figures: restarts, RSS, drain time.
	Extra map[string]any `json:"extra,omitempty"`
	// Violations break the invariant; a run passes when there are none.
	Violations []string `json:"violations"`
}

// Querier is what Check reads the database with: a pool, a connection or a
// transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Check compares the ledger with the inbox, the event jobs and the
// balances in the database q reads.
//
// A valid event that was never acknowledged and never stored passes: that
// is what a provider's retries resolve. A scenario must therefore retry
// every such event first (RetryUnacked, and require it returns 0), or a
// valid event refused for good would go unnoticed.
func (l *Ledger) Check(ctx context.Context, q Querier) (Report, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rep := Report{Attempts: l.attempts, Statuses: map[int]int{}, NoAnswer: l.transport, Jobs: map[string]int{}, Extra: map[string]any{}}
	for k, v := range l.statuses {
		rep.Statuses[k] = v
	}
	p50, p99 := percentile(l.latencies, 0.50), percentile(l.latencies, 0.99)
	rep.P50Millis, rep.P99Millis = ms(p50), ms(p99)

	stored, err := storedEvents(ctx, q)
	if err != nil {
		return rep, err
	}
	jobs, err := eventJobs(ctx, q, rep.Jobs)
	if err != nil {
		return rep, err
	}
	balances, err := accountBalances(ctx, q)
	if err != nil {
		return rep, err
	}

	bad := func(format string, args ...any) {
		if len(rep.Violations) < 50 {
			rep.Violations = append(rep.Violations, fmt.Sprintf(format, args...))
		}
	}
	for _, key := range l.order {
		r := l.events[key]
		rep.Events++
		switch r.ev.Kind {
		case Valid:
			rep.Valid++
		case Tampered:
			rep.Tampered++
		case Stale:
			rep.Stale++
		case Replay:
			rep.Replayed++
		}
		if r.ev.Kind == Replay {
			// A replay may be answered 2xx, as the duplicate it is, but is
			// never an event of its own: no row, and no effect beside the
			// original's, whose account it shares.
			if _, isStored := stored[key]; isStored {
				bad("%s (a replay of %s) was stored", key, r.ev.captured.Key())
			}
			delete(stored, key)
			continue
		}
		if r.acked > 0 {
			rep.Acked++
			rep.DuplicateAcks += r.acked - 1
		}
		row, isStored := stored[key]
		delete(stored, key)
		bal, hasBalance := balances[r.ev.Account]
		delete(balances, r.ev.Account)
		switch {
		case r.ev.Kind != Valid && r.acked > 0:
			bad("%s (%s) was acknowledged %d times", key, r.ev.Kind, r.acked)
		case r.ev.Kind != Valid && isStored:
			bad("%s (%s) was stored", key, r.ev.Kind)
		case r.acked > 0 && !isStored:
			bad("%s was acknowledged %d times but is not in the inbox: lost", key, r.acked)
		}
		if !isStored {
			if hasBalance {
				bad("%s is not stored, yet account %s has %d", key, r.ev.Account, bal)
			}
			continue
		}
		rep.Stored++
		if r.acked == 0 {
			rep.StoredUnacked++
		}
		if !bytes.Equal(row.payload, r.ev.Body) {
			bad("%s is stored with a payload that differs from the body sent", key)
		}
		if !row.processed {
			bad("%s is stored but not marked processed", key)
		}
		if got := jobs[key]; got != "completed" {
			bad("%s has event jobs %q, want one completed", key, got)
		}
		delete(jobs, key)
		switch {
		case !hasBalance:
			bad("%s is stored but its effect was never applied (no %s)", key, r.ev.Account)
		case bal != r.ev.Cents:
			bad("%s effect applied %.2f times: %s is %d, want %d", key, float64(bal)/float64(r.ev.Cents), r.ev.Account, bal, r.ev.Cents)
		default:
			rep.Effects++
		}
	}
	for key := range stored {
		bad("inbox holds %s, which was never sent", key)
	}
	for key, states := range jobs {
		bad("event job for %s (%s) has no stored event", key, states)
	}
	for acc, bal := range balances {
		bad("account %s has %d from no event that was sent", acc, bal)
	}
	for state, n := range rep.Jobs {
		if state != "completed" {
			bad("%d event jobs are left %s", n, state)
		}
	}
	return rep, nil
}

// Require fails t with every violation in rep, after logging its figures.
func (rep Report) Require(t testing.TB) {
	t.Helper()
	t.Logf("%s: %s", rep.Scenario, rep.Summary())
	for _, v := range rep.Violations {
		t.Errorf("invariant broken: %s", v)
	}
}

// Summary is the report's figures on one line.
func (rep Report) Summary() string {
	codes := make([]int, 0, len(rep.Statuses))
	for c := range rep.Statuses {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	var answers []string
	for _, c := range codes {
		answers = append(answers, fmt.Sprintf("%d×%d", rep.Statuses[c], c))
	}
	extra := ""
	if len(rep.Extra) > 0 {
		b, _ := json.Marshal(rep.Extra)
		extra = " extra=" + string(b)
	}
	return fmt.Sprintf("events=%d (valid %d, tampered %d, stale %d) attempts=%d answers=[%s] no_answer=%d acked=%d duplicate_acks=%d stored=%d (unacked %d) effects=%d jobs=%v p50=%.1fms p99=%.1fms%s violations=%d",
		rep.Events, rep.Valid, rep.Tampered, rep.Stale, rep.Attempts, strings.Join(answers, " "), rep.NoAnswer,
		rep.Acked, rep.DuplicateAcks, rep.Stored, rep.StoredUnacked, rep.Effects, rep.Jobs, rep.P50Millis, rep.P99Millis, extra, len(rep.Violations))
}

// Save writes rep as JSON to $HOOKLINE_REPORT_DIR/<scenario>.json when that
// variable is set, so that docs/RELIABILITY.md can quote the last run.
func (rep Report) Save(t testing.TB) {
	t.Helper()
	dir := os.Getenv("HOOKLINE_REPORT_DIR")
	if dir == "" {
		return
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatalf("encode report %s: %v", rep.Scenario, err)
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(rep.Scenario) + ".json"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("create report dir: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), append(b, '\n'), 0o644); err != nil {
		t.Fatalf("write report %s: %v", name, err)
	}
}

type storedRow struct {
	payload   []byte
	processed bool
}

func storedEvents(ctx context.Context, q Querier) (map[string]storedRow, error) {
	rows, err := q.Query(ctx, `SELECT source, event_id, payload, processed_at IS NOT NULL FROM inbox_events`)
	if err != nil {
		return nil, fmt.Errorf("read inbox: %w", err)
	}
	defer rows.Close()
	out := map[string]storedRow{}
	for rows.Next() {
		var src, id string
		var r storedRow
		if err := rows.Scan(&src, &id, &r.payload, &r.processed); err != nil {
			return nil, fmt.Errorf("read inbox: %w", err)
		}
		// The primary key makes a second row impossible; a test that
		// finds one anyway must say so rather than overwrite it.
		if _, dup := out[src+"/"+id]; dup {
			return nil, fmt.Errorf("inbox holds %s/%s twice", src, id)
		}
		out[src+"/"+id] = r
	}
	return out, rows.Err()
}

// eventJobs returns, per event key, the states of its jobs joined with
// commas ("completed" when there is exactly one, completed), and fills
// byState with counts.
func eventJobs(ctx context.Context, q Querier, byState map[string]int) (map[string]string, error) {
	rows, err := q.Query(ctx, `
		SELECT args->>'source', args->>'event_id', string_agg(state::text, ',' ORDER BY id)
		FROM river_job WHERE kind = 'process_event' GROUP BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("read event jobs: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var src, id, states string
		if err := rows.Scan(&src, &id, &states); err != nil {
			return nil, fmt.Errorf("read event jobs: %w", err)
		}
		out[src+"/"+id] = states
		for _, s := range strings.Split(states, ",") {
			byState[s]++
		}
	}
	return out, rows.Err()
}

func accountBalances(ctx context.Context, q Querier) (map[string]int64, error) {
	rows, err := q.Query(ctx, `SELECT account, balance_cents FROM account_balances`)
	if err != nil {
		return nil, fmt.Errorf("read balances: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var acc string
		var cents int64
		if err := rows.Scan(&acc, &cents); err != nil {
			return nil, fmt.Errorf("read balances: %w", err)
		}
		out[acc] = cents
	}
	return out, rows.Err()
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
