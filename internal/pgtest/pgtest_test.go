package pgtest

import (
	"context"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

// TestNewDBIsMigratedAndDroppedAfterItsTest is also the "uses" step of
// scripts/check-test-db.sh: it runs against whatever TEST_DATABASE_URL
// points at, there a private cluster that the check started.
func TestNewDBIsMigratedAndDroppedAfterItsTest(t *testing.T) {
	ctx := context.Background()
	var name string
	t.Run("inner", func(t *testing.T) {
		db := NewDB(t)
		name = db.Name
		var tables int
		err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables
			WHERE schemaname = 'public' AND tablename IN ('inbox_events', 'river_job')`).Scan(&tables)
		if err != nil {
			t.Fatal(err)
		}
		if tables != 2 {
			t.Fatalf("found %d of the tables inbox_events and river_job in %s; the template should hold both", tables, name)
		}
	})
	if t.Failed() {
		return
	}

	conn, err := connectAdmin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var left bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left {
		t.Fatalf("database %s still exists after its test ended", name)
	}
}
