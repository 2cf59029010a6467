// Package migrate brings a database to the schema this build of Hookline
// expects: River's tables (through rivermigrate), Hookline's own (the goose
// files in migrations/), and an application's sets of goose files
// (hooklinetype.MigrationSet), each with a version table of its own.
package migrate

import (
	"context"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/migrations"
)

// lockKey is the advisory lock that serialises migrators. Neither River's
// migrator nor goose's provider (as configured here) takes one, and two
// deploy jobs racing on the same CREATE TABLE would fail one of them.
const lockKey int64 = 0x686f6f6b6c696e65 // "hookline"

// set is a directory of goose migrations with a version table of its own.
// Separate tables let an application number its migrations from 1 without
// colliding with Hookline's, and leave Hookline's chain free of tables that
// only one application wants.
type set struct {
	name  string
	fs    fs.FS
	table string
}

// setName keeps a set's name usable, unquoted, in its table's name.
var setName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,40}$`)

// reserved are the set names whose version tables would be someone
// else's: goose_db_version is Hookline's own (it predates sets), and
// River's tables start with river_. A set sharing a version table would
// see another set's versions as its own and skip its migrations.
var reserved = map[string]bool{"hookline": true, "goose": true, "river": true}

// sets returns Core followed by the application's sets, each tracked in
// the table <name>_db_version.
func sets(app []hooklinetype.MigrationSet) ([]set, error) {
	all := []set{core()}
	seen := map[string]bool{}
	for _, s := range app {
		if !setName.MatchString(s.Name) {
			return nil, fmt.Errorf("migration set name %q: want lower-case letters, digits and _, starting with a letter", s.Name)
		}
		if reserved[s.Name] || strings.HasPrefix(s.Name, "river_") {
			return nil, fmt.Errorf("migration set name %q: its version table would be Hookline's or River's", s.Name)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("migration set name %q: given twice; the second would share the first's version table", s.Name)
		}
		seen[s.Name] = true
		if s.FS == nil {
			return nil, fmt.Errorf("migration set %q: FS is nil", s.Name)
		}
		all = append(all, set{name: s.Name, fs: s.FS, table: s.Name + "_db_version"})
	}
	return all, nil
}

// core is Hookline's own set. It keeps goose's default table name, which
// every database migrated before sets existed already has.
func core() set {
	return set{name: "hookline", fs: migrations.FS(), table: goose.DefaultTablename}
}

// Result lists the migrations one Up applied, or one Pending found.
type Result struct {
	// River holds River's migration versions.
	River []int
	// Hookline holds the versions of Hookline's own set (Core).
	Hookline []int64
	// Sets holds the versions of each extra set, by name. Sets with none
	// are left out.
	Sets map[string][]int64
}

// Empty reports whether the result lists no migration at all.
func (r Result) Empty() bool {
	return len(r.River) == 0 && len(r.Hookline) == 0 && len(r.Sets) == 0
}

func (r *Result) add(s set, versions []int64) {
	if s.name == core().name {
		r.Hookline = versions
		return
	}
	if len(versions) == 0 {
		return
	}
	if r.Sets == nil {
		r.Sets = map[string][]int64{}
	}
	r.Sets[s.name] = versions
}

// Up applies every pending migration: River's, then Hookline's, then each
// of app's sets in order. It is idempotent, and concurrent calls (two
// deploy jobs at once) run one after the other.
func Up(ctx context.Context, pool *pgxpool.Pool, app ...hooklinetype.MigrationSet) (Result, error) {
	var res Result
	all, err := sets(app)
	if err != nil {
		return res, err
	}
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

	river, err := riverMigrator(pool)
	if err != nil {
		return res, err
	}
	rr, err := river.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return res, fmt.Errorf("apply river migrations: %w", err)
	}
	for _, v := range rr.Versions {
		res.River = append(res.River, v.Version)
	}

	for _, s := range all {
		provider, err := newProvider(pool, s)
		if err != nil {
			return res, err
		}
		applied, err := provider.Up(ctx)
		provider.Close()
		if err != nil {
			return res, fmt.Errorf("apply %s migrations: %w", s.name, err)
		}
		var versions []int64
		for _, r := range applied {
			versions = append(versions, r.Source.Version)
		}
		res.add(s, versions)
	}
	return res, nil
}

// Pending lists the migrations this build knows that the database has not
// applied: River's, Hookline's and each of app's sets'.
func Pending(ctx context.Context, pool *pgxpool.Pool, app ...hooklinetype.MigrationSet) (Result, error) {
	var res Result
	all, err := sets(app)
	if err != nil {
		return res, err
	}
	river, err := riverMigrator(pool)
	if err != nil {
		return res, err
	}
	existing, err := river.ExistingVersions(ctx)
	if err != nil {
		return res, fmt.Errorf("read applied river migrations: %w", err)
	}
	applied := map[int]bool{}
	for _, m := range existing {
		applied[m.Version] = true
	}
	for _, m := range river.AllVersions() {
		if !applied[m.Version] {
			res.River = append(res.River, m.Version)
		}
	}
	for _, s := range all {
		versions, err := pending(ctx, pool, s)
		if err != nil {
			return res, err
		}
		res.add(s, versions)
	}
	return res, nil
}

// pending lists s's versions that the database has not applied. goose's
// Status creates the version table when it is missing, so a database
// without one is read as having applied nothing, and Pending stays
// read-only (and works for a role without CREATE).
func pending(ctx context.Context, pool *pgxpool.Pool, s set) ([]int64, error) {
	provider, err := newProvider(pool, s)
	if err != nil {
		return nil, err
	}
	defer provider.Close()
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, s.table).Scan(&exists); err != nil {
		return nil, fmt.Errorf("look for %s's version table %s: %w", s.name, s.table, err)
	}
	var versions []int64
	if !exists {
		for _, src := range provider.ListSources() {
			versions = append(versions, src.Version)
		}
		return versions, nil
	}
	statuses, err := provider.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("read applied %s migrations: %w", s.name, err)
	}
	for _, st := range statuses {
		if st.State == goose.StatePending {
			versions = append(versions, st.Source.Version)
		}
	}
	return versions, nil
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

func riverMigrator(pool *pgxpool.Pool) (*rivermigrate.Migrator[pgx.Tx], error) {
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return nil, fmt.Errorf("create river migrator: %w", err)
	}
	return m, nil
}

// newProvider returns a goose provider for s over pool's database. Closing
// it closes only the database/sql wrapper, not pool.
func newProvider(pool *pgxpool.Pool, s set) (*goose.Provider, error) {
	db := stdlib.OpenDBFromPool(pool)
	p, err := goose.NewProvider(goose.DialectPostgres, db, s.fs, goose.WithTableName(s.table))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("create goose provider for %s migrations: %w", s.name, err)
	}
	return p, nil
}
