package hooklinetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/migrate"
)

// DefaultServerURL is the server Database creates its databases on when
// TEST_DATABASE_URL is not set: a local Postgres with trust auth.
const DefaultServerURL = "postgres://postgres@127.0.0.1:5432/postgres"

// Database creates a database of its own for tb, applies River's,
// Hookline's and sets' migrations to it (as hookline.Migrate does), and
// drops it when tb's test ends. The server is TEST_DATABASE_URL's (a URL
// of any database on it, whose user may create databases), or
// DefaultServerURL.
//
// Each call costs a CREATE DATABASE and a full migration, under a second
// on a laptop: share one per package (from TestMain, with a testing.TB of
// your own) if a package has many tests, and isolate tests with Tx.
func Database(ctx context.Context, tb testing.TB, sets ...hooklinetype.MigrationSet) *pgxpool.Pool {
	tb.Helper()
	server := os.Getenv("TEST_DATABASE_URL")
	if server == "" {
		server = DefaultServerURL
	}
	u, err := url.Parse(server)
	if err != nil {
		tb.Fatalf("hooklinetest: TEST_DATABASE_URL is not a URL: %v", err) // the error never quotes the URL
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "hooklinetest_" + hex.EncodeToString(b[:])

	admin, err := pgx.Connect(ctx, server)
	if err != nil {
		tb.Fatalf("hooklinetest: connect to %s to create a test database (is Postgres running? set TEST_DATABASE_URL): %v", u.Redacted(), err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("hooklinetest: create database %s on %s: %v", name, u.Redacted(), err)
	}
	tb.Cleanup(func() {
		ctx := context.WithoutCancel(ctx)
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			tb.Errorf("hooklinetest: connect to drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("hooklinetest: drop database %s: %v", name, err)
		}
	})

	u.Path = "/" + name
	pool, err := pgxpool.New(ctx, u.String())
	if err != nil {
		tb.Fatalf("hooklinetest: connect to %s: %v", name, err)
	}
	tb.Cleanup(pool.Close) // runs before the drop: cleanups run last-in, first-out
	if _, err := migrate.Up(ctx, pool, sets...); err != nil {
		tb.Fatalf("hooklinetest: migrate %s: %v", name, err)
	}
	return pool
}
