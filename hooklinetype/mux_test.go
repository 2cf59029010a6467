package hooklinetype_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/hooklinetype"
)

func TestMuxRoutesBySourceAndType(t *testing.T) {
	t.Parallel()
	var got []string
	record := func(name string) hooklinetype.HandlerFunc {
		return func(_ context.Context, _ pgx.Tx, ev hooklinetype.Event) error {
			got = append(got, name+":"+ev.EventID)
			return nil
		}
	}
	mux := hooklinetype.NewMux()
	mux.Register("stripe", "charge.succeeded", record("charge"))
	mux.RegisterWith("bank", "transfer.settled", record("transfer"), hooklinetype.HandlerOpts{Group: true})

	// A Mux is itself a Handler, so it can be wrapped or nested.
	var h hooklinetype.Handler = mux
	ctx := context.Background()
	require.NoError(t, h.Handle(ctx, nil, hooklinetype.Event{Source: "stripe", Type: "charge.succeeded", EventID: "e1"}))
	require.NoError(t, h.Handle(ctx, nil, hooklinetype.Event{Source: "bank", Type: "transfer.settled", EventID: "e2"}))
	require.NoError(t, h.Handle(ctx, nil, hooklinetype.Event{Source: "bank", Type: "charge.succeeded", EventID: "e3"}),
		"an unregistered route is applied with no effect by default")
	require.Equal(t, []string{"charge:e1", "transfer:e2"}, got)

	_, opts, ok := mux.Route("bank", "transfer.settled")
	require.True(t, ok)
	require.True(t, opts.Group)
	_, _, ok = mux.Route("bank", "transfer.reversed")
	require.False(t, ok)
}

func TestMuxNotFoundIsReplaceable(t *testing.T) {
	t.Parallel()
	mux := hooklinetype.NewMux()
	mux.NotFound = hooklinetype.HandlerFunc(func(_ context.Context, _ pgx.Tx, ev hooklinetype.Event) error {
		return hooklinetype.Permanent(fmt.Errorf("no handler for %s", ev.Type))
	})
	err := mux.Handle(context.Background(), nil, hooklinetype.Event{Source: "s", Type: "t"})
	require.True(t, hooklinetype.IsPermanent(err))
}

func TestMuxPanicsOnDuplicateRegistration(t *testing.T) {
	t.Parallel()
	mux := hooklinetype.NewMux()
	h := func(context.Context, pgx.Tx, hooklinetype.Event) error { return nil }
	mux.RegisterFunc("bank", "a", h)
	require.PanicsWithValue(t, "hookline: handler for bank/a registered twice", func() { mux.RegisterFunc("bank", "a", h) })
}

func TestPermanentIsDetectedThroughWrapping(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("handle: %w", hooklinetype.Permanent(errors.New("bad payload")))
	require.True(t, hooklinetype.IsPermanent(err))
	require.False(t, hooklinetype.IsPermanent(errors.New("transient")))
	require.ErrorContains(t, err, "bad payload")
}

func TestTheZeroMuxIsReadyToUse(t *testing.T) {
	var called bool
	mux := &hooklinetype.Mux{}
	mux.RegisterFunc("stripe", "invoice.paid", func(context.Context, pgx.Tx, hooklinetype.Event) error {
		called = true
		return nil
	})
	require.NoError(t, mux.Handle(context.Background(), nil, hooklinetype.Event{Source: "stripe", Type: "invoice.paid"}))
	require.True(t, called)
}

func TestPermanentOfNilIsNil(t *testing.T) {
	require.NoError(t, hooklinetype.Permanent(nil))
}

func TestHoldForWithoutOrderedPanics(t *testing.T) {
	t.Parallel()
	mux := hooklinetype.NewMux()
	h := hooklinetype.HandlerFunc(func(context.Context, pgx.Tx, hooklinetype.Event) error { return nil })
	require.Panics(t, func() { mux.RegisterWith("s", "a", h, hooklinetype.HandlerOpts{HoldFor: time.Second}) })
	require.Panics(t, func() { mux.RegisterWith("s", "b", h, hooklinetype.HandlerOpts{Ordered: true, HoldFor: -time.Second}) })
	require.NotPanics(t, func() { mux.RegisterWith("s", "c", h, hooklinetype.HandlerOpts{Ordered: true, HoldFor: time.Second}) })
}
