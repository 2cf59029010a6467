package migrate_test

import (
	"context"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/migrate"
	"github.com/hookline/hookline/internal/pgtest"
	"github.com/hookline/hookline/migrations"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestUpCreatesRiverAndHooklineTables(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmptyDB(t)
	res, err := migrate.Up(context.Background(), db.Pool)
	require.NoError(t, err)
	require.NotEmpty(t, res.River)
	require.Equal(t, hooklineVersions(t), res.Hookline)
	require.Contains(t, res.Hookline, int64(4), "00004_replay_audit")

	for _, table := range []string{"river_job", "river_queue", "inbox_events", "account_balances", "replay_audit"} {
		var exists bool
		require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&exists))
		require.True(t, exists, table)
	}
}

func TestUpIsIdempotent(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmptyDB(t)
	_, err := migrate.Up(context.Background(), db.Pool)
	require.NoError(t, err)
	res, err := migrate.Up(context.Background(), db.Pool)
	require.NoError(t, err)
	require.Empty(t, res.River)
	require.Empty(t, res.Hookline)
}

// Without the advisory lock, concurrent migrators race on CREATE TABLE and
// on goose's version table, and all but one fail.
func TestConcurrentUpsTakeTurns(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmptyDB(t)
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	results := make([]migrate.Result, n)
	for i := range n {
		wg.Go(func() { results[i], errs[i] = migrate.Up(context.Background(), db.Pool) })
	}
	wg.Wait()
	applied := 0
	for i := range n {
		require.NoError(t, errs[i], "migrator %d", i)
		applied += len(results[i].Hookline)
	}
	require.Len(t, hooklineVersions(t), applied, "each migration applied exactly once")
}

// hooklineVersions lists the versions of the embedded migration files, which
// every Up on an empty database must apply, in order.
func hooklineVersions(t *testing.T) []int64 {
	t.Helper()
	names, err := fs.Glob(migrations.FS(), "*.sql")
	require.NoError(t, err)
	var versions []int64
	for _, name := range names {
		v, err := strconv.ParseInt(strings.SplitN(name, "_", 2)[0], 10, 64)
		require.NoError(t, err, name)
		versions = append(versions, v)
	}
	return versions
}
