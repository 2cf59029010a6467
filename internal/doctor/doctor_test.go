package doctor_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/doctor"
	"github.com/hookline/hookline/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func checkNamed(t *testing.T, checks []doctor.Check, name string) doctor.Check {
	t.Helper()
	for _, c := range checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check named %q in %v", name, checks)
	return doctor.Check{}
}

func TestDoctor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		breaks string // SQL that breaks the database
		check  string
		detail string
	}{
		{"passes on a freshly migrated database", "", "hot-path indexes exist", "present"},
		{"detects a dropped index", "DROP INDEX inbox_events_received_at_idx", "hot-path indexes exist", "missing: inbox_events_received_at_idx"},
		{"detects an invalid index", "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'river_job_kind'::regclass", "no invalid indexes", "river_job_kind"},
		{"detects a missing replay-key index", "DROP INDEX inbox_events_replay_key_idx", "hot-path indexes exist", "missing: inbox_events_replay_key_idx"},
		{"detects an invalid replay-key index", "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'inbox_events_replay_key_idx'::regclass", "no invalid indexes", "inbox_events_replay_key_idx"},
		{"detects a missing Hookline migration", "DELETE FROM goose_db_version WHERE version_id = 2", "migrations are current", "Hookline [2]"},
		{"detects a missing River migration", "DELETE FROM river_migration WHERE version = 6", "migrations are current", "River [6]"},
		{"detects a dropped idempotency constraint", "ALTER TABLE inbox_events DROP CONSTRAINT inbox_events_pkey", "idempotency constraint present", "no PRIMARY KEY"},
		{"detects an event stored twice", `ALTER TABLE inbox_events DROP CONSTRAINT inbox_events_pkey;
			INSERT INTO inbox_events (source, event_id, payload) VALUES ('bank', 'tr_1', ''), ('bank', 'tr_1', '')`, "no event stored twice", "1 keys stored more than once, e.g. bank/tr_1"},
		{"passes durable commit settings", "", "commits are durable", "fsync=on full_page_writes=on synchronous_commit=on"},
		{"detects commits that are not flushed", `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = off', current_database()); END $$`,
			"commits are durable", "synchronous_commit=off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := pgtest.NewDB(t)
			ctx := context.Background()
			if tt.breaks != "" {
				_, err := db.Pool.Exec(ctx, tt.breaks)
				require.NoError(t, err)
				db.Pool.Reset() // so that per-database settings apply
			}
			checks, err := doctor.Run(ctx, db.Pool)
			require.NoError(t, err)
			c := checkNamed(t, checks, tt.check)
			require.Contains(t, c.Detail, tt.detail)
			if tt.breaks == "" {
				for _, c := range checks {
					if c.Name != "connection headroom" { // shared with every test running now
						require.NotEqual(t, doctor.Fail, c.Status, "%s: %s", c.Name, c.Detail)
					}
				}
				return
			}
			require.Equal(t, doctor.Fail, c.Status)
			require.NotEmpty(t, c.Hint, "every failure says how to fix it")
		})
	}
}
