package hooklinetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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

// errBadServerURL never quotes the URL: it may hold a password.
var errBadServerURL = errors.New("TEST_DATABASE_URL is not a valid Postgres URL or key=value DSN")

// Database creates a database of its own for tb, applies River's,
// Hookline's and sets' migrations to it (as hookline.Migrate does), and
// drops it when tb's test ends. The server is TEST_DATABASE_URL's (a URL
// or DSN of any database on it, whose user may create databases), or
// DefaultServerURL.
//
// Each call costs a CREATE DATABASE and a full migration, under a second
// on a laptop. A package with many tests shares one database, opened in
// TestMain with OpenDatabase, and isolates its tests with Tx.
func Database(ctx context.Context, tb testing.TB, sets ...hooklinetype.MigrationSet) *pgxpool.Pool {
	tb.Helper()
	pool, drop, err := OpenDatabase(ctx, sets...)
	if err != nil {
		tb.Fatalf("hooklinetest: %v", err)
	}
	tb.Cleanup(func() {
		if err := drop(); err != nil {
			tb.Errorf("hooklinetest: %v", err)
		}
	})
	return pool
}

// OpenDatabase is Database for code without a testing.TB, such as
// TestMain: it returns the pool and a function that closes it and drops
// the database.
//
//	var pool *pgxpool.Pool
//
//	func TestMain(m *testing.M) {
//		p, drop, err := hooklinetest.OpenDatabase(context.Background(), invoices.Migrations())
//		if err != nil {
//			log.Fatal(err)
//		}
//		pool = p
//		code := m.Run()
//		_ = drop()
//		os.Exit(code)
//	}
func OpenDatabase(ctx context.Context, sets ...hooklinetype.MigrationSet) (*pgxpool.Pool, func() error, error) {
	server := os.Getenv("TEST_DATABASE_URL")
	if server == "" {
		server = DefaultServerURL
	}
	serverCfg, err := pgx.ParseConfig(server)
	if err != nil {
		return nil, nil, errBadServerURL
	}
	var b [6]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	name := "hooklinetest_" + hex.EncodeToString(b[:])

	if err := adminExec(ctx, serverCfg, "CREATE DATABASE "+name); err != nil {
		return nil, nil, fmt.Errorf("create database %s (is Postgres running? set TEST_DATABASE_URL): %w", name, err)
	}
	dropDB := func() error {
		if err := adminExec(context.WithoutCancel(ctx), serverCfg, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		return nil
	}
	poolCfg, err := pgxpool.ParseConfig(server)
	if err != nil {
		_ = dropDB()
		return nil, nil, errBadServerURL
	}
	poolCfg.ConnConfig.Database = name
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		_ = dropDB()
		return nil, nil, fmt.Errorf("connect to database %s: %w", name, err)
	}
	drop := func() error {
		pool.Close()
		return dropDB()
	}
	if _, err := migrate.Up(ctx, pool, sets...); err != nil {
		_ = drop()
		return nil, nil, fmt.Errorf("migrate database %s: %w", name, err)
	}
	return pool, drop, nil
}

// adminExec runs sql on a connection of its own to the server's
// maintenance database: CREATE and DROP DATABASE cannot run in a pool's
// transaction, nor on the database they name.
func adminExec(ctx context.Context, cfg *pgx.ConnConfig, sql string) error {
	conn, err := pgx.ConnectConfig(ctx, cfg.Copy())
	if err != nil {
		return fmt.Errorf("connect to the test server: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}
