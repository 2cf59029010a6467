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
// (the number of CPUs, at least 4) suits neither a worker with its
// transaction slots nor a receiver with 4 batch flushers. Its connections
// carry name as application_name, unless url sets one, so that
// pg_stat_activity shows which process holds which connection. The pool
// connects lazily, so New succeeds while the database is down.
func New(ctx context.Context, url string, maxConns, autoConns int, name string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message can quote the URL, password included.
		return nil, fmt.Errorf("DATABASE_URL is not a valid Postgres URL or DSN")
	}
	if _, set := cfg.ConnConfig.RuntimeParams["application_name"]; !set && name != "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = name
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
