package hookline

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/migrate"
)

// MigrationSet is an application's own goose SQL migrations, for the tables
// its handlers write, tracked in a version table of its own. See
// hooklinetype.MigrationSet.
type MigrationSet = hooklinetype.MigrationSet

// MigrationResult lists the migration versions one Migrate applied, or
// PendingMigrations found.
type MigrationResult struct {
	// River holds River's versions (its job tables).
	River []int
	// Hookline holds the versions of Hookline's own migrations.
	Hookline []int64
	// Sets holds each MigrationSet's versions, by name; sets with none are
	// left out.
	Sets map[string][]int64
}

// Migrate brings pool's database up to date: River's migrations, then
// Hookline's, then each of sets in order. It is idempotent, and concurrent
// calls (two deploy jobs at once) take turns on an advisory lock. Run it
// from a deploy step, before starting a receiver or worker of the new build.
func Migrate(ctx context.Context, pool *pgxpool.Pool, sets ...MigrationSet) (MigrationResult, error) {
	res, err := migrate.Up(ctx, pool, sets...)
	return MigrationResult(res), err
}

// PendingMigrations lists the migrations that Migrate would apply, without
// applying any.
func PendingMigrations(ctx context.Context, pool *pgxpool.Pool, sets ...MigrationSet) (MigrationResult, error) {
	res, err := migrate.Pending(ctx, pool, sets...)
	return MigrationResult(res), err
}
