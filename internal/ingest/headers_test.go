package ingest_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/ingest"
)

// Both ingesters store the kept headers as a JSON object, and an event
// without any as {} (never NULL): re-verification and hookctl events get
// read the column as an object.
func TestKeptHeadersAreStoredAsAnObjectAndNoneAsEmpty(t *testing.T) {
	t.Parallel()
	type ingestFunc func(context.Context, inbox.NewEvent) (ingest.Outcome, error)
	ingesters := []struct {
		name  string
		setup func(t *testing.T) (ingestFunc, *pgxpool.Pool)
	}{
		{"Single", func(t *testing.T) (ingestFunc, *pgxpool.Pool) {
			b := setup(t)
			return b.ingester.Ingest, b.db.Pool
		}},
		{"Batch", func(t *testing.T) (ingestFunc, *pgxpool.Pool) {
			b := setupBatch(t, ingest.BatchOptions{})
			return b.batcher.Ingest, b.db.Pool
		}},
	}
	kept := map[string]string{"Stripe-Signature": "t=1,v1=ab", "X-Quote": `a "quoted" \ value`}
	for _, tt := range ingesters {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ingestEvent, pool := tt.setup(t)
			with, without := event("tr_headers"), event("tr_no_headers")
			with.Headers = kept
			for _, ev := range []inbox.NewEvent{with, without} {
				_, err := ingestEvent(context.Background(), ev)
				require.NoError(t, err)
			}
			stored := func(id string) map[string]string {
				var h map[string]string
				require.NoError(t, pool.QueryRow(context.Background(),
					`SELECT headers FROM inbox_events WHERE event_id = $1`, id).Scan(&h))
				return h
			}
			require.Equal(t, kept, stored("tr_headers"))
			none := stored("tr_no_headers")
			require.NotNil(t, none, "no headers must be stored as {}, not NULL")
			require.Empty(t, none)
		})
	}
}
