package ingest_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/pgtest"
)

// BenchmarkIngest times the store-and-enqueue transaction alone, without
// HTTP: one event per transaction (Single), and 100 concurrent callers
// sharing batches (Batch), as the receiver's two modes do, with the
// receiver's River client (JobIDs). Its figures are per event.
func BenchmarkIngest(b *testing.B) {
	ctx := context.Background()
	body := []byte(`{"id":"tr","type":"transfer.settled","amount":1250,"account":"acct_1"}`)
	b.Run("Single", func(b *testing.B) {
		db := pgtest.NewDB(b)
		rc := newRiverClient(b, db.Pool)
		s := ingest.NewSingle(db.Pool, rc)
		i := 0
		for b.Loop() {
			i++
			_, err := s.Ingest(ctx, inbox.NewEvent{Source: "bank", EventID: fmt.Sprintf("tr_%d", i), Type: "transfer.settled", Payload: body})
			require.NoError(b, err)
		}
	})
	b.Run("Batch", func(b *testing.B) {
		db := pgtest.NewDB(b)
		rc := newRiverClient(b, db.Pool)
		batcher := ingest.NewBatcher(db.Pool, rc, slog.New(slog.DiscardHandler), ingest.BatchOptions{MaxWait: time.Millisecond})
		b.Cleanup(func() { _ = batcher.Close(ctx) })
		const callers = 100
		next := make(chan int)
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				for i := range next {
					_, err := batcher.Ingest(ctx, inbox.NewEvent{Source: "bank", EventID: fmt.Sprintf("tr_%d", i), Type: "transfer.settled", Payload: body})
					if err != nil {
						b.Error(err)
					}
				}
			})
		}
		i := 0
		for b.Loop() {
			i++
			next <- i
		}
		close(next)
		wg.Wait()
	})
}
