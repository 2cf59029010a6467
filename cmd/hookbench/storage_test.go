package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestStorageMeasuresEveryRelationOfTheInboxPerRow: the heap and each
// index of inbox_events, each divided by the table's rows; river_job, with
// no rows, is left out rather than divided by zero.
func TestStorageMeasuresEveryRelationOfTheInboxPerRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewDB(t)
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var evs []inbox.NewEvent
	for i := range 50 {
		id := fmt.Sprintf("tr_%d", i)
		evs = append(evs, inbox.NewEvent{Source: "bank", EventID: id, Type: "transfer.settled", Payload: []byte(`{"id":"` + id + `"}`)})
	}
	if _, err := inbox.InsertMany(ctx, tx, evs, nil); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	got, err := storage(ctx, "batch", &database{pool: db.Pool})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]storageResult{}
	for _, s := range got {
		if s.Table != "inbox_events" || s.Rows != 50 {
			t.Errorf("%s: table %s with %d rows, want inbox_events with 50", s.Relation, s.Table, s.Rows)
		}
		if s.PerRow != float64(s.Bytes)/50 {
			t.Errorf("%s: %.1f bytes per row for %d bytes", s.Relation, s.PerRow, s.Bytes)
		}
		seen[s.Relation] = s
	}
	if heap, ok := seen["inbox_events"]; !ok || heap.IsIndex || heap.Bytes == 0 {
		t.Errorf("the heap is missing or empty: %+v", heap)
	}
	if pk, ok := seen["inbox_events_pkey"]; !ok || !pk.IsIndex || pk.Bytes == 0 {
		t.Errorf("the primary key index is missing or empty: %+v", pk)
	}
}
