package schema

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/logtest"
	"github.com/hookline/hookline/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// checkerBundle is a Checker on a fresh database, with a fake clock and
// its logs captured.
type checkerBundle struct {
	db      *pgtest.DB
	checker *Checker
	logs    *logtest.Buffer
	clock   time.Time
}

func newChecker(t *testing.T, migrated bool) *checkerBundle {
	t.Helper()
	b := &checkerBundle{logs: &logtest.Buffer{}, clock: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	if migrated {
		b.db = pgtest.NewDB(t)
	} else {
		b.db = pgtest.NewEmptyDB(t)
	}
	b.checker = NewChecker(b.db.Pool, slog.New(slog.NewJSONHandler(b.logs, nil)))
	b.checker.now = func() time.Time { return b.clock }
	return b
}

// reapply records version v as applied again, as hookctl migrate would
// after applying it.
func (b *checkerBundle) reapply(t *testing.T, v int64) {
	t.Helper()
	_, err := b.db.Pool.Exec(context.Background(), `INSERT INTO goose_db_version (version_id, is_applied) VALUES ($1, true)`, v)
	require.NoError(t, err)
}

// unapplyLatest makes the latest Hookline migration pending again, as if
// this build were newer than the database, and returns its version.
func (b *checkerBundle) unapplyLatest(t *testing.T) int64 {
	t.Helper()
	var v int64
	require.NoError(t, b.db.Pool.QueryRow(context.Background(),
		`DELETE FROM goose_db_version WHERE version_id = (SELECT max(version_id) FROM goose_db_version) RETURNING version_id`).Scan(&v))
	return v
}

func TestCheckerSaysToRunHookctlMigrateOnAnEmptyDatabase(t *testing.T) {
	t.Parallel()
	b := newChecker(t, false)
	err := b.checker.Check(context.Background())
	require.ErrorIs(t, err, ErrNotMigrated)
	require.Regexp(t, "^database is not migrated: River migrations 1-[0-9, -]+ and Hookline migrations 1-[0-9, -]+ are pending; run `hookctl migrate`$", err.Error())
	require.Equal(t, 1, strings.Count(b.logs.String(), "run `hookctl migrate`"), b.logs.String())
}

func TestCheckerFindsOnePendingMigration(t *testing.T) {
	t.Parallel()
	b := newChecker(t, true)
	require.NoError(t, b.checker.Check(context.Background()))
	v := b.unapplyLatest(t)
	b.clock = b.clock.Add(checkOKFor)
	err := b.checker.Check(context.Background())
	require.ErrorIs(t, err, ErrNotMigrated)
	require.Equal(t, "database is not migrated: Hookline migration "+itoa(v)+" is pending; run `hookctl migrate`", err.Error())
}

func TestCheckerKeepsAResultAWhileAndLogsOnlyChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newChecker(t, true)
	require.NoError(t, b.checker.Check(ctx))
	v := b.unapplyLatest(t)

	b.clock = b.clock.Add(checkOKFor - time.Second)
	require.NoError(t, b.checker.Check(ctx), "a migrated database is not read again within 30s")
	b.clock = b.clock.Add(time.Second)
	require.ErrorIs(t, b.checker.Check(ctx), ErrNotMigrated)
	b.clock = b.clock.Add(checkRetryFor)
	require.ErrorIs(t, b.checker.Check(ctx), ErrNotMigrated, "read again, and logged only once")

	// Migrated again (its schema change never left): still reported as
	// not migrated for a few seconds, then ready.
	b.reapply(t, v)
	for range 3 {
		require.ErrorIs(t, b.checker.Check(ctx), ErrNotMigrated, "kept for 5s")
	}
	b.clock = b.clock.Add(checkRetryFor)
	require.NoError(t, b.checker.Check(ctx))

	logs := b.logs.String()
	require.Equal(t, 1, strings.Count(logs, `"msg":"database is not migrated`), logs)
	require.Equal(t, 1, strings.Count(logs, `"msg":"database migrated"`), logs)
}

func TestCheckerReportsAnUnreachableDatabaseWithoutCallingItUnmigrated(t *testing.T) {
	t.Parallel()
	b := newChecker(t, true)
	b.db.Pool.Close()
	err := b.checker.Check(context.Background())
	require.Error(t, err)
	require.False(t, errors.Is(err, ErrNotMigrated), err.Error())
	require.Contains(t, err.Error(), "check the database's migrations")
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func TestRangesShortensRuns(t *testing.T) {
	t.Parallel()
	for want, versions := range map[string][]int64{
		"5":           {5},
		"1-8":         {1, 2, 3, 4, 5, 6, 7, 8},
		"1-3, 5, 7-8": {1, 2, 3, 5, 7, 8},
		"2, 4":        {2, 4},
	} {
		require.Equal(t, want, ranges(versions))
	}
}

func TestCheckerDoesNotKeepAFailedCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newChecker(t, true)
	admin, err := pgx.Connect(ctx, pgtest.AdminURL())
	require.NoError(t, err)
	t.Cleanup(func() { admin.Close(ctx) })
	allow := func(on bool) {
		t.Helper()
		_, err := admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{b.db.Name}.Sanitize()+" WITH ALLOW_CONNECTIONS "+strconv.FormatBool(on))
		require.NoError(t, err)
		if !on {
			_, err = admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, b.db.Name)
			require.NoError(t, err)
		}
	}
	allow(false)
	t.Cleanup(func() { allow(true) })

	err = b.checker.Check(ctx)
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrNotMigrated)
	allow(true)
	require.NoError(t, b.checker.Check(ctx), "the database is back: checked again at once, on the same clock")
	require.Contains(t, b.logs.String(), `"msg":"could not check the database's migrations"`)
}
