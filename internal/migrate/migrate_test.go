package migrate_test

import (
	"context"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/examples/balances"
	"github.com/hookline/hookline/hooklinetype"
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

	for _, table := range []string{"river_job", "river_queue", "inbox_events", "replay_audit"} {
		require.True(t, tableExists(t, db.Pool, table), table)
	}
	require.False(t, tableExists(t, db.Pool, "account_balances"),
		"the example's table is not in Hookline's chain: applications do not inherit it")
}

func TestASetIsTrackedInAVersionTableOfItsOwn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewEmptyDB(t)
	set := hooklinetype.MigrationSet{Name: "invoices", FS: fstest.MapFS{
		"00001_invoices.sql": {Data: []byte("-- +goose Up\nCREATE TABLE invoices (id text PRIMARY KEY);\n-- +goose Down\nDROP TABLE invoices;\n")},
	}}

	pending, err := migrate.Pending(ctx, db.Pool, set)
	require.NoError(t, err)
	require.Equal(t, []int64{1}, pending.Sets["invoices"])

	res, err := migrate.Up(ctx, db.Pool, set)
	require.NoError(t, err)
	require.Equal(t, hooklineVersions(t), res.Hookline, "version 1 of the set does not stand for Hookline's 00001")
	require.Equal(t, []int64{1}, res.Sets["invoices"])
	require.True(t, tableExists(t, db.Pool, "invoices"))
	require.True(t, tableExists(t, db.Pool, "invoices_db_version"))

	again, err := migrate.Up(ctx, db.Pool, set)
	require.NoError(t, err)
	require.True(t, again.Empty(), "second Up applies nothing: %+v", again)
}

// Databases migrated before the example had a set of its own got
// account_balances from Hookline's 00002; the example's set must adopt the
// table, with its rows, rather than fail on it.
func TestTheExampleSetAdoptsTheTableOfAnOlderChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewEmptyDB(t)
	_, err := migrate.Up(ctx, db.Pool)
	require.NoError(t, err)
	_, err = db.Pool.Exec(ctx, `CREATE TABLE account_balances (account text PRIMARY KEY, balance_cents bigint NOT NULL);
		INSERT INTO account_balances VALUES ('bank:acct_1', 500)`)
	require.NoError(t, err)

	res, err := migrate.Up(ctx, db.Pool, balances.Migrations())
	require.NoError(t, err)
	require.Equal(t, []int64{1, 2}, res.Sets["balances"])
	var cents int64
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT balance_cents FROM account_balances WHERE account = 'bank:acct_1'`).Scan(&cents))
	require.EqualValues(t, 500, cents)
}

func TestASetNameThatCannotNameATableIsRefusedBeforeAnyMigration(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmptyDB(t)
	for _, name := range []string{"", "Invoices", "1st", "in-voices", "a; DROP TABLE x", "hookline", "goose", "river", "river_jobs"} {
		_, err := migrate.Up(context.Background(), db.Pool, hooklinetype.MigrationSet{Name: name, FS: fstest.MapFS{}})
		require.ErrorContains(t, err, "migration set name", name)
	}
	require.False(t, tableExists(t, db.Pool, "river_job"), "nothing applied")
	_, err := migrate.Up(context.Background(), db.Pool, hooklinetype.MigrationSet{Name: "invoices_v2", FS: fstest.MapFS{
		"00001_nothing.sql": {Data: []byte("-- +goose Up\nSELECT 1;\n")},
	}})
	require.NoError(t, err)
}

func TestASetGivenTwiceIsRefused(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmptyDB(t)
	set := hooklinetype.MigrationSet{Name: "invoices", FS: fstest.MapFS{"00001_a.sql": {Data: []byte("-- +goose Up\nSELECT 1;\n")}}}
	_, err := migrate.Up(context.Background(), db.Pool, set, set)
	require.ErrorContains(t, err, "given twice")
}

// Pending is a read: on a database never migrated it must list every
// version without creating goose's version tables.
func TestPendingCreatesNothing(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmptyDB(t)
	res, err := migrate.Pending(context.Background(), db.Pool, balances.Migrations())
	require.NoError(t, err)
	require.Equal(t, hooklineVersions(t), res.Hookline)
	require.Equal(t, []int64{1, 2}, res.Sets["balances"])
	require.NotEmpty(t, res.River)
	require.False(t, tableExists(t, db.Pool, "goose_db_version"))
	require.False(t, tableExists(t, db.Pool, "balances_db_version"))
}

func tableExists(t *testing.T, pool *pgxpool.Pool, table string) bool {
	t.Helper()
	var exists bool
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&exists))
	return exists
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
