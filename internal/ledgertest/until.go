package ledgertest

import (
	"context"
	"math/rand/v2"
	"sync"
)

// RunUntil is Run that stops gracefully: once stop is closed, no client
// starts another delivery, and the deliveries in flight go on, with their
// retries, until each is acknowledged, refused, or ctx ends. Run's only way
// to stop early is to cancel ctx, which abandons the attempts in flight
// unrecorded; one of them may still have been committed by the receiver,
// leaving an event in the inbox that the ledger never saw sent. Scenarios
// that stop a flood in the middle should use RunUntil with a ctx that
// outlives the faults.
func (l Load) RunUntil(ctx context.Context, stop <-chan struct{}) {
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	var wg sync.WaitGroup
	for i := range l.Clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(l.Seed, uint64(i)))
			for ctx.Err() == nil && !stopped() && (l.Events == 0 || l.Gen.n.Load() < l.Events) {
				l.one(ctx, rng)
			}
		})
	}
	wg.Wait()
}
