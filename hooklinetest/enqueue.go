package hooklinetest

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/tracing"
)

// ErrDuplicate is returned by Enqueue for an event whose source and id are
// already stored: the receiver would answer 2xx and enqueue nothing.
var ErrDuplicate = errors.New("event already stored")

// Enqueue stores ev in the inbox and enqueues its job through tx, as the
// receiver does once a delivery is verified, for tests that run a real
// worker (hookline.RunWorker, or NewRiverWorker in the application's own
// River client) against the database. Commit tx for the worker to see
// them. ev.InboxID is ignored; the event returned carries the stored
// row's id. The payload, Object and Time are stored as given: Enqueue
// verifies and extracts nothing (a zero Time reads back as the received
// time). The job carries the trace context of ctx's span, if any, as the
// receiver's jobs carry their request's.
func Enqueue(ctx context.Context, tx pgx.Tx, ev hooklinetype.Event) (hooklinetype.Event, error) {
	row, inserted, err := inbox.Insert(ctx, tx, inbox.NewEvent{
		Source: ev.Source, EventID: ev.EventID, Type: ev.Type, APIVersion: ev.APIVersion,
		Payload: ev.Payload, Headers: ev.Headers, Time: ev.Time, Object: ev.Object,
	})
	if err != nil {
		return ev, err
	}
	if !inserted {
		return ev, fmt.Errorf("enqueue event %s/%s: %w", ev.Source, ev.EventID, ErrDuplicate)
	}
	// An insert-only client: it needs no pool, since it writes through tx,
	// and no workers.
	rc, err := river.NewClient(riverpgxv5.New(nil), &river.Config{Middleware: []rivertype.Middleware{&ingest.JobIDs{}}})
	if err != nil {
		return ev, fmt.Errorf("create river client: %w", err)
	}
	// As the receiver stores its commit span's: the worker's spans then
	// join the trace of the span in ctx, if any.
	var md map[inbox.Key][]byte
	if m := tracing.JobMetadata(trace.SpanContextFromContext(ctx)); m != nil {
		md = map[inbox.Key][]byte{row.Key: m}
	}
	if _, err := ingest.Enqueue(ctx, rc, tx, []inbox.Inserted{row}, md); err != nil {
		return ev, err
	}
	ev.InboxID = row.ID
	return ev, nil
}
