// Package migrate brings a database to the schema this build of Hookline
// expects: River's tables (through rivermigrate) and Hookline's own (the
// goose files in migrations/).
package migrate

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/hookline/hookline/migrations"
)

// lockKey is the advisory lock that serialises migrators. Neither River's
// migrator nor goose's provider (as configured here) takes one, and two
// deploy jobs racing on the same CREATE TABLE would fail one of them.
const lockKey int64 = 0x686f6f6b6c696e65 // "hookline"

// Result lists the migrations one Up applied.
type Result struct {
	// River holds the River migration versions applied.
	River []int
	// Hookline holds the Hookline migration versions applied.
	Hookline []int64
}

// Up applies every pending River and Hookline migration. It is idempotent,
// and concurrent calls (two deploy jobs at once) run one after the other.
func Up(ctx context.Context, pool *pgxpool.Pool) (Result, error) {
	var res Result
	// The lock lives on a connection of its own, outside pool: migrators
	// waiting for it must not hold pool connections that the one holding it
	// needs to do its work.
	conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
	if err != nil {
		return res, fmt.Errorf("connect for migration lock: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx)) // closing the session releases the lock
	if err := lock(ctx, conn); err != nil {
		return res, err
	}

	riverMigrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return res, fmt.Errorf("create river migrator: %w", err)
	}
	rr, err := riverMigrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return res, fmt.Errorf("apply river migrations: %w", err)
	}
	for _, v := range rr.Versions {
		res.River = append(res.River, v.Version)
	}

	provider, err := newProvider(pool)
	if err != nil {
		return res, err
	}
	defer provider.Close()
	hr, err := provider.Up(ctx)
	if err != nil {
		return res, fmt.Errorf("apply hookline migrations: %w", err)
	}
	for _, r := range hr {
		res.Hookline = append(res.Hookline, r.Source.Version)
	}
	return res, nil
}

// lockPoll is how often a waiting migrator tries the lock again.
const lockPoll = 200 * time.Millisecond

// lock takes the migration lock on conn, trying again until it is free or
// ctx ends. It polls pg_try_advisory_lock rather than waiting in
// pg_advisory_lock: a session blocked in that call sits in an open
// transaction, and CREATE INDEX CONCURRENTLY in the migrator holding the
// lock waits for every open transaction to end, so the two would wait for
// each other forever, unseen by Postgres's deadlock detector.
func lock(ctx context.Context, conn *pgx.Conn) error {
	for {
		var got bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockKey).Scan(&got); err != nil {
			return fmt.Errorf("take migration lock: %w", err)
		}
		if got {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the migration lock, held by another migrator: %w", ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}

// newProvider returns a goose provider over pool's database. Closing it
// closes only the database/sql wrapper, not pool.
func newProvider(pool *pgxpool.Pool) (*goose.Provider, error) {
	db := stdlib.OpenDBFromPool(pool)
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS())
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("create goose provider: %w", err)
	}
	return p, nil
}

// Pending lists the migrations this build knows that the database has not
// applied, River's and Hookline's.
func Pending(ctx context.Context, pool *pgxpool.Pool) (Result, error) {
	var res Result
	riverMigrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return res, fmt.Errorf("create river migrator: %w", err)
	}
	existing, err := riverMigrator.ExistingVersions(ctx)
	if err != nil {
		return res, fmt.Errorf("read applied river migrations: %w", err)
	}
	applied := map[int]bool{}
	for _, m := range existing {
		applied[m.Version] = true
	}
	for _, m := range riverMigrator.AllVersions() {
		if !applied[m.Version] {
			res.River = append(res.River, m.Version)
		}
	}
	provider, err := newProvider(pool)
	if err != nil {
		return res, err
	}
	defer provider.Close()
	statuses, err := provider.Status(ctx)
	if err != nil {
		return res, fmt.Errorf("read applied hookline migrations: %w", err)
	}
	for _, s := range statuses {
		if s.State == goose.StatePending {
			res.Hookline = append(res.Hookline, s.Source.Version)
		}
	}
	return res, nil
}
