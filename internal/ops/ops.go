// Package ops holds the queries and actions behind hookctl's operator
// commands: the pipeline's status, pausing and draining the events queue,
// listing and inspecting stored events, replaying them, re-driving
// dead-lettered jobs and pruning old payloads.
//
// Everything here works on the database alone, through a pool and an
// insert-only River client that is never started, so hookctl can run
// anywhere DATABASE_URL reaches. Prune is a plain function over a DB so that
// a River periodic job can run it too.
//
// Its SQL on River's own tables (river_job, river_queue, river_leader) is
// in internal/riverdb, the one place to re-check when River is upgraded.
// An inbox row's jobs are found by river_job's primary key: the receiver
// records its job on the row (job_id), and replay_audit each replay's
// (migrations/00009_inbox_job_id.sql). Rows stored before job_id existed
// are looked up with args @> {"inbox_id": id}, through River's GIN index
// on river_job.args.
package ops

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/riverdb"
)

// DB is what Prune needs: a *pgxpool.Pool, or a pgx.Tx (whose Begin opens a
// savepoint).
type DB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Client runs operator queries and actions against one database's events
// queue (hooklinetype.Queue) and inbox.
type Client struct {
	pool  *pgxpool.Pool
	river *river.Client[pgx.Tx]
	queue string
}

// New returns a Client over pool. Its River client only inserts and
// administers jobs; it is never started, so it works no jobs.
func New(pool *pgxpool.Pool) (*Client, error) {
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		// The client is never started; its logger would only report
		// River's internal chatter, which an operator's CLI does not want.
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return nil, fmt.Errorf("create insert-only river client: %w", err)
	}
	return &Client{pool: pool, river: rc, queue: hooklinetype.Queue}, nil
}

// Queue is the name of the River queue the client operates on.
func (c *Client) Queue() string { return c.queue }

// liveStates is the argument for riverdb.HasLiveJob's statesParam. Replay
// and prune leave an event alone while it has a job that will still run.
var liveStates = riverdb.Names(riverdb.LiveStates())

// readTx runs f in a read-only transaction. JIT is turned off in it: the
// GIN lookups of an event's jobs are estimated at 1% of river_job, which
// pushes cheap plans over jit_above_cost, and compiling them cost 250 ms
// for a query that runs in 5.
func (c *Client) readTx(ctx context.Context, f func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, c.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL jit = off`); err != nil {
			return fmt.Errorf("turn off jit: %w", err)
		}
		return f(tx)
	})
}
