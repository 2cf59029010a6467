// Package pgtest gives each test a fresh, fully migrated database of its own
// on a real Postgres server.
//
// The first NewDB in a test binary creates a template database and migrates
// it; every NewDB then clones that template, which takes a fraction of the
// time of migrating. Databases are named hltest_<pid>_..., dropped when their
// test ends, and the template is dropped by Main. Databases left by a test
// binary that died are dropped by the next run, whose sweep removes every
// hltest_<pid>_ database whose process is gone.
//
// The server is TEST_DATABASE_URL, or postgres://postgres@127.0.0.1:5432.
// pgtest never starts one; `make test` finds or starts a server and sets
// TEST_DATABASE_URL (scripts/with-test-db.sh).
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookline/hookline/examples/balances"
	"github.com/hookline/hookline/internal/migrate"
)

const defaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// The template is per test binary; a package-level once is the only way to
// share it between the tests of a package without threading it through
// every test's signature.
var (
	templateOnce sync.Once
	templateName string
	templateErr  error
	dbCounter    atomic.Int64
)

// Main runs a package's tests, drops its template database, and exits.
// Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main without the exit, for a TestMain that has its own cleanup
// to do afterwards: a deferred call would not survive os.Exit.
func Run(m *testing.M) int {
	code := m.Run()
	if templateName != "" {
		if err := dropDatabase(context.Background(), templateName); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		}
	}
	return code
}

// DB is a test's own database.
type DB struct {
	// Name is the database name.
	Name string
	// URL connects to the database.
	URL string
	// Pool is a pool connected to the database, closed when the test ends.
	Pool *pgxpool.Pool
}

// NewDB returns a new migrated database, dropped when t ends.
func NewDB(t testing.TB) *DB {
	t.Helper()
	db, drop, err := Open()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return db
}

// NewEmptyDB returns a new database with no tables at all, dropped when t
// ends, for tests of the migrations themselves.
func NewEmptyDB(t testing.TB) *DB {
	t.Helper()
	db, drop, err := create(context.Background(), "template0")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return db
}

// Open returns a new migrated database and a function that drops it. Tests
// use NewDB; Open is for runnable examples, which have no testing.T.
func Open() (*DB, func() error, error) {
	templateOnce.Do(func() { templateName, templateErr = createTemplate(context.Background()) })
	if templateErr != nil {
		return nil, nil, templateErr
	}
	return create(context.Background(), templateName)
}

func create(ctx context.Context, template string) (*DB, func() error, error) {
	name := fmt.Sprintf("hltest_%d_%d", os.Getpid(), dbCounter.Add(1))
	if err := adminExec(ctx, fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`, name, template)); err != nil {
		return nil, nil, fmt.Errorf("create %s from %s: %w", name, template, err)
	}
	dbURL := URLFor(name)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		_ = dropDatabase(ctx, name)
		return nil, nil, fmt.Errorf("connect to %s: %w", name, err)
	}
	drop := func() error {
		pool.Close()
		return dropDatabase(context.Background(), name)
	}
	return &DB{Name: name, URL: dbURL, Pool: pool}, drop, nil
}

// AdminURL is the URL of the server's maintenance database.
func AdminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return defaultAdminURL
}

// URLFor returns the URL of database name on the test server.
func URLFor(name string) string {
	u, err := url.Parse(AdminURL())
	if err != nil {
		panic(fmt.Sprintf("pgtest: TEST_DATABASE_URL is not a URL: %v", err))
	}
	u.Path = "/" + name
	return u.String()
}

func createTemplate(ctx context.Context) (string, error) {
	if err := sweepStale(ctx); err != nil {
		return "", err
	}
	name := fmt.Sprintf("hltest_%d_template", os.Getpid())
	if err := adminExec(ctx, `CREATE DATABASE `+name); err != nil {
		return "", fmt.Errorf("create template %s (is Postgres running at %s?): %w", name, redact(AdminURL()), err)
	}
	pool, err := pgxpool.New(ctx, URLFor(name))
	if err != nil {
		return "", fmt.Errorf("connect to template %s: %w", name, err)
	}
	defer pool.Close()
	if _, err := migrate.Up(ctx, pool, balances.Migrations()); err != nil {
		return "", fmt.Errorf("migrate template %s: %w", name, err)
	}
	return name, nil
}

// sweepStale drops databases left behind by test binaries that have exited.
func sweepStale(ctx context.Context) error {
	conn, err := connectAdmin(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_database WHERE datname LIKE 'hltest\_%'`)
	if err != nil {
		return fmt.Errorf("list test databases: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list test databases: %w", err)
	}
	for _, name := range names {
		pid, err := strconv.Atoi(strings.Split(name, "_")[1])
		if err != nil || processAlive(pid) {
			continue
		}
		if err := dropDatabase(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func dropDatabase(ctx context.Context, name string) error {
	if err := adminExec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, name)); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

func adminExec(ctx context.Context, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := connectAdmin(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// connectAdmin connects to the maintenance database, waiting out "too many
// clients": the test packages share one server, and a moment when their
// clusters together hold every connection must not fail a test that only
// wants to create or drop its database.
func connectAdmin(ctx context.Context) (*pgx.Conn, error) {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		conn, err := pgx.Connect(ctx, AdminURL())
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "53300" { // too_many_connections
			if err != nil {
				return nil, fmt.Errorf("connect to %s%s: %w", redact(AdminURL()), defaultHint(), err)
			}
			return conn, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to %s: %w (still waiting at %v)", redact(AdminURL()), err, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// defaultHint explains, when TEST_DATABASE_URL is unset, where the server
// was looked for and how to get one: a bare go test ./... starts nothing.
func defaultHint() string {
	if os.Getenv("TEST_DATABASE_URL") != "" {
		return ""
	}
	return " (TEST_DATABASE_URL is unset; make test finds or starts a server)"
}

// redact hides a password in a database URL before it goes into a message.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
