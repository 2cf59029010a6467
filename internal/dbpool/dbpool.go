// Package dbpool opens the pgx pool each Hookline process uses, sized for
// the work that process does.
package dbpool

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// New returns a pool for url. Its size is maxConns if positive; otherwise
// pool_max_conns from url if given; otherwise autoConns. pgx's own default
// (the number of CPUs, at least 4) suits neither a worker running 50 jobs at
// once, each in its own transaction, nor a receiver with 4 batch flushers.
// The pool connects lazily, so New succeeds while the database is down.
func New(ctx context.Context, url string, maxConns, autoConns int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message can quote the URL, password included.
		return nil, fmt.Errorf("DATABASE_URL is not a valid Postgres URL or DSN")
	}
	switch {
	case maxConns > 0:
		cfg.MaxConns = int32(maxConns)
	case !strings.Contains(url, "pool_max_conns"):
		cfg.MaxConns = int32(autoConns)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create pool: %w", err)
	}
	return pool, nil
}
