package ops_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/ops"
	"github.com/hookline/hookline/internal/pgtest"
)

// replayJobBase offsets the ids of seeded replay jobs past any seeded
// event, so that seeding more events later reuses none of them.
const replayJobBase = 2_000_000_000

// seedEvents stores the events with inbox ids from to to (inclusive), as
// the receiver leaves them: each with its job, whose id is the event's, and
// job_id set. Most are processed and their jobs completed; every 100th is
// a dead letter whose job was discarded with a long error; every 500th was
// replayed once, its replay job available. It is one INSERT ... SELECT
// generate_series per table, so a million events take seconds, not the
// hours the receiver would.
func seedEvents(tb testing.TB, pool *pgxpool.Pool, from, to int) {
	tb.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, sql := range []string{`
			INSERT INTO river_job (id, args, kind, max_attempts, queue, state, attempt,
			                       attempted_at, finalized_at, created_at, scheduled_at, errors)
			SELECT g, jsonb_build_object('inbox_id', g, 'source', 'stripe', 'event_id', 'evt_' || g, 'type', 'charge.succeeded'),
			       'process_event', 25, 'events', CASE WHEN g % 100 = 0 THEN 'discarded' ELSE 'completed' END::river_job_state, 1,
			       now(), now(), now(), now(),
			       CASE WHEN g % 100 = 0 THEN ARRAY[jsonb_build_object('at', now(), 'attempt', 1, 'trace', '',
			           'error', 'handle event stripe/evt_' || g || ': ' || repeat('upstream said no; ', 20) || 'the end')] END
			FROM generate_series($1::bigint, $2::bigint) g`, `
			INSERT INTO river_job (id, args, kind, max_attempts, queue, state, created_at, scheduled_at)
			SELECT $3 + g, jsonb_build_object('inbox_id', g, 'source', 'stripe', 'event_id', 'evt_' || g, 'type', 'charge.succeeded', 'replay', true),
			       'process_event', 25, 'events', 'available', now(), now()
			FROM generate_series($1::bigint, $2::bigint) g WHERE g % 500 = 0`, `
			INSERT INTO replay_audit (inbox_id, source, event_id, job_id, replayed_by)
			SELECT g, 'stripe', 'evt_' || g, $3 + g, 'seed'
			FROM generate_series($1::bigint, $2::bigint) g WHERE g % 500 = 0`, `
			INSERT INTO inbox_events (id, source, event_id, event_type, payload, headers, received_at, processed_at, processed_by_job, job_id)
			OVERRIDING SYSTEM VALUE
			SELECT g, 'stripe', 'evt_' || g, 'charge.succeeded', convert_to(repeat('{"id":"evt_' || g || '"}', 10), 'UTF8'),
			       '{"Content-Type":"application/json"}', now() - ($2 - g) * interval '10 ms',
			       CASE WHEN g % 100 <> 0 THEN now() END, CASE WHEN g % 100 <> 0 THEN g END, g
			FROM generate_series($1::bigint, $2::bigint) g`,
		} {
			args := []any{from, to}
			if strings.Contains(sql, "$3") {
				args = append(args, replayJobBase)
			}
			if _, err := tx.Exec(ctx, sql, args...); err != nil {
				return err
			}
		}
		// Later inserts (River's, the receiver's) take ids past the seeded ones.
		_, err := tx.Exec(ctx, `
			SELECT setval('river_job_id_seq', (SELECT max(id) FROM river_job)),
			       setval(pg_get_serial_sequence('inbox_events', 'id'), (SELECT max(id) FROM inbox_events))`)
		return err
	})
	require.NoError(tb, err)
	// As autovacuum would after a load this size; the plans depend on it.
	_, err = pool.Exec(ctx, `ANALYZE river_job, inbox_events, replay_audit`)
	require.NoError(tb, err)
}

// queryLog records the queries run through a pool: the SQL and arguments
// of each.
type queryLog struct {
	mu      sync.Mutex
	queries []loggedQuery
}

type loggedQuery struct {
	SQL  string
	Args []any
}

// TraceQueryStart implements pgx.QueryTracer.
func (l *queryLog) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queries = append(l.queries, loggedQuery{data.SQL, data.Args})
	return ctx
}

// TraceQueryEnd implements pgx.QueryTracer.
func (l *queryLog) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// selects returns the SELECT statements logged since the last call, and
// forgets them.
func (l *queryLog) selects() []loggedQuery {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []loggedQuery
	for _, q := range l.queries {
		if strings.HasPrefix(strings.TrimSpace(q.SQL), "SELECT") {
			out = append(out, q)
		}
	}
	l.queries = nil
	return out
}

// tracedClient returns an ops client on db whose queries log records.
func tracedClient(t testing.TB, db *pgtest.DB, log *queryLog) *ops.Client {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(db.URL)
	require.NoError(t, err)
	cfg.MaxConns = 2
	cfg.ConnConfig.Tracer = log
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	client, err := ops.New(pool)
	require.NoError(t, err)
	return client
}

// planNode is a node of EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON).
type planNode struct {
	NodeType         string     `json:"Node Type"`
	RelationName     string     `json:"Relation Name"`
	IndexName        string     `json:"Index Name"`
	ActualRows       float64    `json:"Actual Rows"`
	ActualLoops      float64    `json:"Actual Loops"`
	RowsRemoved      float64    `json:"Rows Removed by Filter"`
	SharedHitBlocks  int64      `json:"Shared Hit Blocks"`
	SharedReadBlocks int64      `json:"Shared Read Blocks"`
	Plans            []planNode `json:"Plans"`
}

// walk calls f on n and every node under it.
func (n planNode) walk(f func(planNode)) {
	f(n)
	for _, c := range n.Plans {
		c.walk(f)
	}
}

// explain runs q under EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON), in a
// read-only transaction with JIT off as internal/ops runs it, and returns
// its plan.
func explain(t testing.TB, pool *pgxpool.Pool, q loggedQuery) planNode {
	t.Helper()
	ctx := context.Background()
	var out []byte
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL jit = off`); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) `+q.SQL, q.Args...).Scan(&out)
	})
	require.NoError(t, err, "explain %s", q.SQL)
	var plans []struct {
		Plan planNode `json:"Plan"`
	}
	require.NoError(t, json.Unmarshal(out, &plans))
	require.Len(t, plans, 1)
	return plans[0].Plan
}
