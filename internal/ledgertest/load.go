package ledgertest

import (
	"context"
	"math/rand/v2"
	"sync"
)

// Mix is the traffic a Load sends, as fractions of its deliveries. The rest
// are new valid events.
type Mix struct {
	// Duplicates redeliver an event sent before; ConcurrentDuplicates of
	// them (a fraction of Duplicates) send a new event twice at once.
	Duplicates, ConcurrentDuplicates float64
	// Tampered and Stale are deliveries that must be refused.
	Tampered, Stale float64
}

// RealTraffic is the mix of the flood soak in docs/RELIABILITY.md: about
// 30% duplicates, a third of them concurrent, 5% tampered and 2% signed too
// long ago.
var RealTraffic = Mix{Duplicates: 0.30, ConcurrentDuplicates: 1.0 / 3, Tampered: 0.05, Stale: 0.02}

// Load sends Mix traffic from Clients goroutines, each delivering one event
// at a time with provider-style retries, until ctx ends or Events new
// events have been made (0: no limit).
type Load struct {
	Sender  *Sender
	Gen     *Generator
	Mix     Mix
	Clients int
	Events  int64
	// Seed makes the choice of deliveries repeatable.
	Seed uint64
}

// Run sends until ctx ends or the event budget is spent, and waits for the
// deliveries in flight.
func (l Load) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range l.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(l.Seed, uint64(i)))
			for ctx.Err() == nil && (l.Events == 0 || l.Gen.n.Load() < l.Events) {
				l.one(ctx, rng)
			}
		}()
	}
	wg.Wait()
}

func (l Load) one(ctx context.Context, rng *rand.Rand) {
	r := rng.Float64()
	switch {
	case r < l.Mix.Tampered:
		l.Sender.Deliver(ctx, l.Gen.Next(Tampered))
	case r < l.Mix.Tampered+l.Mix.Stale:
		l.Sender.Deliver(ctx, l.Gen.Next(Stale))
	case r < l.Mix.Tampered+l.Mix.Stale+l.Mix.Duplicates:
		if rng.Float64() < l.Mix.ConcurrentDuplicates {
			ev := l.Gen.Next(Valid)
			var wg sync.WaitGroup
			for range 2 {
				wg.Add(1)
				go func() { defer wg.Done(); l.Sender.Deliver(ctx, ev) }()
			}
			wg.Wait()
			return
		}
		if ev, ok := l.Sender.Ledger.Sent(rng); ok {
			l.Sender.Deliver(ctx, ev)
		}
	default:
		l.Sender.Deliver(ctx, l.Gen.Next(Valid))
	}
}

// RetryUnacked redelivers every valid event that never got a 2xx, as the
// providers would after an outage, until each is acknowledged or ctx ends.
// It returns how many are still unacknowledged.
func (l *Ledger) RetryUnacked(ctx context.Context, s *Sender, clients int) int {
	todo := make(chan Event)
	var wg sync.WaitGroup
	var mu sync.Mutex
	left := 0
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range todo {
				if !s.Deliver(ctx, ev) {
					mu.Lock()
					left++
					mu.Unlock()
				}
			}
		}()
	}
	for _, ev := range l.Unacked() {
		todo <- ev
	}
	close(todo)
	wg.Wait()
	return left
}
