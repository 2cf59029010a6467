package ingest_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/ingest"
)

// captured is one signed delivery of a source whose id is not signed, as
// an attacker who captured it sends it again under another id: the same
// body, so the same replay key.
func captured(id string) inbox.NewEvent {
	body := []byte(`{"action":"opened","number":7}`)
	key := sha256.Sum256(body)
	return inbox.NewEvent{Source: "gh", EventID: id, Type: "pull_request", Payload: body, ReplayKey: key[:]}
}

func TestSingleRefusesAStoredBodyUnderANewID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	tests := []struct {
		id   string
		want ingest.Outcome
	}{
		{"delivery_1", ingest.Accepted},
		{"delivery_1", ingest.Duplicate}, // the provider's own retry
		{"forged_2", ingest.DuplicateBody},
		{"forged_3", ingest.DuplicateBody},
	}
	for _, tt := range tests {
		outcome, err := b.ingester.Ingest(ctx, captured(tt.id))
		require.NoError(t, err)
		require.Equal(t, tt.want, outcome, tt.id)
	}
	require.Equal(t, 1, b.count(t, "inbox_events"))
	require.Equal(t, 1, b.count(t, "river_job"))

	// Events of sources without a guard carry no key and never collide.
	for i := range 2 {
		ev := event(fmt.Sprintf("tr_%d", i))
		ev.Payload = []byte(`{"same":"body"}`)
		outcome, err := b.ingester.Ingest(ctx, ev)
		require.NoError(t, err)
		require.Equal(t, ingest.Accepted, outcome)
	}
}

func TestBatcherRefusesAStoredBodyUnderANewIDWithinAndAcrossBatches(t *testing.T) {
	t.Parallel()
	b := setupBatch(t, ingest.BatchOptions{MaxSize: 5, MaxWait: time.Hour})
	evs := []inbox.NewEvent{captured("d1"), captured("d1"), captured("f2"), captured("f3"), event("tr_other")}
	outcomes, errs := b.ingestAll(context.Background(), evs)
	counts := map[ingest.Outcome]int{}
	for i := range evs {
		require.NoError(t, errs[i])
		counts[outcomes[i]]++
	}
	// Within one batch, whichever of d1, f2 and f3 sorts first is stored;
	// the other keys are body duplicates, and d1's second caller is either.
	require.Equal(t, 2, counts[ingest.Accepted], "one captured delivery and tr_other")
	require.Equal(t, 3, counts[ingest.Duplicate]+counts[ingest.DuplicateBody])
	require.GreaterOrEqual(t, counts[ingest.DuplicateBody], 2)

	outcomes, errs = b.ingestAll(context.Background(), []inbox.NewEvent{captured("f4"), captured("d1"), event("tr_2"), event("tr_3"), event("tr_4")})
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, ingest.DuplicateBody, outcomes[0], "a later batch refuses the body too")
	require.Equal(t, 5, b.count(t, "inbox_events"))
	require.Equal(t, 5, b.count(t, "river_job"))
}

// TestBatchesWithCrossedReplayKeysDoNotDeadlock runs batches whose replay
// keys come in the opposite order to their event ids: each body is sent
// twice, under a low id in one half and a high id in the other. Without the
// replay-key locks, concurrent batches deadlocked on the replay index and
// answered their callers 503.
func TestBatchesWithCrossedReplayKeysDoNotDeadlock(t *testing.T) {
	t.Parallel()
	b := setupBatch(t, ingest.BatchOptions{MaxSize: 100, MaxWait: time.Hour, Flushers: 4})
	for round := range 5 {
		var evs []inbox.NewEvent
		for k := range 100 {
			for side, body := range []int{k, 99 - k} {
				payload := fmt.Appendf(nil, `{"round":%d,"body":%d}`, round, body)
				sum := sha256.Sum256(payload)
				evs = append(evs, inbox.NewEvent{Source: "gh", EventID: fmt.Sprintf("r%d_%c_%03d", round, 'a'+side, k), Type: "push", Payload: payload, ReplayKey: sum[:]})
			}
		}
		outcomes, errs := b.ingestAll(context.Background(), evs)
		accepted := 0
		for i, err := range errs {
			require.NoError(t, err, "round %d, event %s", round, evs[i].EventID)
			if outcomes[i] == ingest.Accepted {
				accepted++
			}
		}
		require.Equal(t, 100, accepted, "round %d: each of the 100 bodies stored once", round)
	}
	_, failures := b.observer.snapshot()
	require.Zero(t, failures)
}

// releases counts each event's Release calls.
type releases struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *releases) track(ev inbox.NewEvent) inbox.NewEvent {
	ev.Release = func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.n[ev.EventID]++
	}
	return ev
}

func (r *releases) counts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.n)
}

// TestEveryIngestedBodyIsReleasedOnce: the receiver's memory budget counts
// a body until its ingester releases it, so each must be released exactly
// once, whatever becomes of it: stored, a duplicate, dropped because its
// caller left, refused after Close, or stored singly.
func TestEveryIngestedBodyIsReleasedOnce(t *testing.T) {
	t.Parallel()
	rel := &releases{n: map[string]int{}}
	b := setupBatch(t, ingest.BatchOptions{MaxSize: 4, MaxWait: time.Hour})
	_, errs := b.ingestAll(context.Background(), []inbox.NewEvent{rel.track(event("r1")), rel.track(event("r1")), rel.track(event("r2")), rel.track(event("r3"))})
	for _, err := range errs {
		require.NoError(t, err)
	}

	// A caller that leaves before its batch flushes: the batch drops it
	// later, and only then releases its body (or, if it left before its
	// event was queued, Ingest does).
	left, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := b.batcher.Ingest(left, rel.track(event("gone"))); done <- err }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	require.NoError(t, b.batcher.Close(context.Background())) // flushes the open batch, dropping "gone"
	_, err := b.batcher.Ingest(context.Background(), rel.track(event("late")))
	require.ErrorIs(t, err, ingest.ErrClosed)

	s := setup(t)
	_, err = s.ingester.Ingest(context.Background(), rel.track(event("single")))
	require.NoError(t, err)

	require.Equal(t, map[string]int{"r1": 2, "r2": 1, "r3": 1, "gone": 1, "late": 1, "single": 1}, rel.counts())
}
