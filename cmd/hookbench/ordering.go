package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/ingest"
)

// orderingResult is what ordered handlers cost: the worker binary draining
// the same Stripe subscription events through the example's ordered
// handler, with each event's object key (ordered: a lock, the mark read and
// written) and without (the handler alone).
type orderingResult struct {
	Events  int `json:"events"`
	Objects int `json:"objects"`
	Runs    int `json:"runs"`
	// The median run's rates, by ordered / unordered ratio, and the
	// lowest and highest ratio over the runs.
	OrderedPerSec   float64 `json:"ordered_jobs_per_sec"`
	UnorderedPerSec float64 `json:"unordered_jobs_per_sec"`
	RatioLow        float64 `json:"ratio_low"`
	RatioHigh       float64 `json:"ratio_high"`
	// Stale is how many of the median ordered run's events were stale.
	Stale int `json:"stale"`
}

// Ratio is the ordered rate as a share of the unordered one.
func (o orderingResult) Ratio() float64 { return ratio(o.OrderedPerSec, o.UnorderedPerSec) }

// The ordering phase's load: 2,000 events over 1,000 subscriptions.
const (
	orderingEvents  = 2000
	orderingObjects = 1000
)

// ordering measures the worker, with its default settings, draining
// orderingEvents subscription events, ordered and unordered in turn, runs
// times; the median ratio is reported.
func (b *bench) ordering(ctx context.Context, rep *report) error {
	var runs []orderingResult
	for i := range max(1, b.o.orderingRuns) {
		res := orderingResult{Events: orderingEvents, Objects: orderingObjects, Runs: b.o.orderingRuns}
		for _, ordered := range []bool{false, true} {
			name := fmt.Sprintf("unordered%d", i)
			if ordered {
				name = fmt.Sprintf("ordered%d", i)
			}
			var stale int
			var rate float64
			_, _, err := b.drain(ctx, name, orderingEvents, 1, 0, false,
				func(db *database) error { return fillSubscriptions(ctx, db, ordered, uint64(i)) },
				func(db *database) error {
					// From the first job's start to the last effect's
					// transaction: the drain's own measure ends at the
					// last completion, which River's batch completer
					// makes up to 250ms late, a third of this short run.
					var secs float64
					err := db.pool.QueryRow(ctx, `SELECT extract(epoch FROM
						(SELECT max(processed_at) FROM inbox_events) - (SELECT min(attempted_at) FROM river_job))::float8`).Scan(&secs)
					if err != nil {
						return err
					}
					rate = float64(orderingEvents) / secs
					stale, err = db.count(ctx, `SELECT count(*) FROM inbox_events WHERE superseded_by IS NOT NULL`)
					return err
				})
			if err != nil {
				return err
			}
			if ordered {
				res.OrderedPerSec, res.Stale = rate, stale
			} else {
				res.UnorderedPerSec = rate
			}
		}
		b.logf("ordering, run %d: ordered %.0f jobs/s, unordered %.0f jobs/s; ratio %.2f", i+1, res.OrderedPerSec, res.UnorderedPerSec, res.Ratio())
		runs = append(runs, res)
	}
	slices.SortFunc(runs, func(a, b orderingResult) int { return cmp.Compare(a.Ratio(), b.Ratio()) })
	med := runs[len(runs)/2]
	med.RatioLow, med.RatioHigh = runs[0].Ratio(), runs[len(runs)-1].Ratio()
	rep.Ordering = &med
	return nil
}

// fillSubscriptions stores the ordering phase's events with their jobs, as
// the receiver would: two customer.subscription.updated events per
// subscription, the older stored first, the subscriptions shuffled. With
// ordered, each event carries its subscription as its object key (as the
// stripe source reads it, data.object.id); without, none, so the same
// handler runs unordered.
func fillSubscriptions(ctx context.Context, db *database, ordered bool, seed uint64) error {
	rc, err := river.NewClient(riverpgxv5.New(db.pool), &river.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	batcher := ingest.NewBatcher(db.pool, rc, slog.New(slog.DiscardHandler), ingest.BatchOptions{MaxSize: 500})
	defer batcher.Close(ctx) //nolint:errcheck
	rng := rand.New(rand.NewPCG(seed, 14))
	order := make([]int, 0, orderingEvents)
	for _, obj := range rng.Perm(orderingObjects) {
		for k := range orderingEvents / orderingObjects {
			order = append(order, obj*(orderingEvents/orderingObjects)+k)
		}
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	// Eight storers, each object's events all with one of them, so that
	// the older is stored first.
	const storers = 8
	var wg sync.WaitGroup
	errs := make(chan error, storers)
	for g := range storers {
		wg.Go(func() {
			for _, i := range order {
				obj := i / (orderingEvents / orderingObjects)
				if obj%storers != g {
					continue
				}
				id, sub := fmt.Sprintf("evt_order_%d", i), fmt.Sprintf("sub_%d", obj)
				created := base.Add(time.Duration(i) * time.Second)
				body := fmt.Appendf(nil, `{"id":%q,"type":"customer.subscription.updated","created":%d,"data":{"object":{"id":%q,"customer":"cus_%d","status":"active","plan":{"id":"price_%d"}}}}`,
					id, created.Unix(), sub, obj, i)
				ev := inbox.NewEvent{Source: "stripe", EventID: id, Type: "customer.subscription.updated", Payload: body, Time: created}
				if ordered {
					ev.Object = sub
				}
				if _, err := batcher.Ingest(ctx, ev); err != nil {
					errs <- fmt.Errorf("fill subscriptions: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}
