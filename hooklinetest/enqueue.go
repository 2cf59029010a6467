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
	// An insert-only client: it needs no pool, since it writes through tx,
	// and no workers.
	rc, err := river.NewClient(riverpgxv5.New(nil), &river.Config{Middleware: []rivertype.Middleware{&ingest.JobIDs{}}})
	if err != nil {
		return ev, fmt.Errorf("create river client: %w", err)
	}
	// The receiver's own store step, with the trace of the span in ctx, if
	// any, as the receiver stores its commit span's.
	st, err := ingest.StoreTraced(ctx, tx, rc, inbox.NewEvent{
		Source: ev.Source, EventID: ev.EventID, Type: ev.Type, APIVersion: ev.APIVersion,
		Payload: ev.Payload, Headers: ev.Headers, Time: ev.Time, Object: ev.Object,
	}, tracing.JobMetadata(trace.SpanContextFromContext(ctx)))
	if err != nil {
		return ev, err
	}
	if st.Outcome != ingest.Accepted {
		return ev, fmt.Errorf("enqueue event %s/%s: %w", ev.Source, ev.EventID, ErrDuplicate)
	}
	ev.InboxID = st.InboxID
	return ev, nil
}
