package ingest_test

import (
	"context"
	"crypto/sha256"
	"fmt"
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
