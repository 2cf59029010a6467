// Package doctor checks that a Hookline database is fit for the hot paths:
// the schema is current, the indexes and the idempotency constraint are in
// place and valid, commits are durable, the big tables are being vacuumed,
// and connections have headroom. Each failed check carries a hint that fixes it.
package doctor

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookline/hookline/internal/migrate"
	"github.com/hookline/hookline/internal/riverdb"
)

// Status is a check's verdict.
type Status string

// The verdicts. Warn does not fail the run.
const (
	Pass Status = "pass"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Check is one finding.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Hint   string `json:"hint,omitempty"`
}

// RequiredIndexes are the indexes the hot paths use: River's fetch,
// completion, uniqueness and cleaning (riverdb.Indexes), and the inbox's
// keys and retention. Without inbox_events_replay_key_idx, or with it
// INVALID, the replay guard is off: the inbox's conflict clause has no
// index to find a taken replay key in.
var RequiredIndexes = slices.Concat(riverdb.Indexes, []string{
	"inbox_events_pkey", "inbox_events_id_key", "inbox_events_received_at_idx", "inbox_events_replay_key_idx",
})

// Run performs every check.
func Run(ctx context.Context, pool *pgxpool.Pool) ([]Check, error) {
	var checks []Check
	for _, f := range []func(context.Context, *pgxpool.Pool) ([]Check, error){
		migrations, indexes, idempotency, durability, tables, connections,
	} {
		c, err := f(ctx, pool)
		if err != nil {
			return checks, err
		}
		checks = append(checks, c...)
	}
	return checks, nil
}

func migrations(ctx context.Context, pool *pgxpool.Pool) ([]Check, error) {
	p, err := migrate.Pending(ctx, pool)
	if err != nil {
		return nil, err
	}
	c := Check{Name: "migrations are current", Status: Pass, Detail: "River and Hookline migrations all applied"}
	if len(p.River)+len(p.Hookline) > 0 {
		c.Status = Fail
		c.Detail = fmt.Sprintf("pending: River %v, Hookline %v", p.River, p.Hookline)
		c.Hint = "run: hookctl migrate"
	}
	return []Check{c}, nil
}

func indexes(ctx context.Context, pool *pgxpool.Pool) ([]Check, error) {
	rows, err := pool.Query(ctx, `
		SELECT c.relname, i.indisvalid, i.indisready
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema()`)
	if err != nil {
		return nil, fmt.Errorf("list indexes: %w", err)
	}
	type idx struct {
		name         string
		valid, ready bool
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (idx, error) {
		var x idx
		return x, r.Scan(&x.name, &x.valid, &x.ready)
	})
	if err != nil {
		return nil, fmt.Errorf("list indexes: %w", err)
	}
	present := map[string]bool{}
	var invalid []string
	for _, x := range all {
		present[x.name] = true
		if !x.valid || !x.ready {
			invalid = append(invalid, x.name)
		}
	}
	var missing []string
	for _, name := range RequiredIndexes {
		if !present[name] {
			missing = append(missing, name)
		}
	}
	c1 := Check{Name: "hot-path indexes exist", Status: Pass, Detail: fmt.Sprintf("%d required indexes present", len(RequiredIndexes))}
	if len(missing) > 0 {
		c1.Status, c1.Detail = Fail, "missing: "+strings.Join(missing, ", ")
		c1.Hint = "recreate them from River's and Hookline's migrations (hookctl migrate does not re-run applied ones); for River, `river migrate-get --version N --up` prints the SQL"
	}
	c2 := Check{Name: "no invalid indexes", Status: Pass, Detail: "every index is valid"}
	if len(invalid) > 0 {
		c2.Status, c2.Detail = Fail, "INVALID (a failed CREATE INDEX CONCURRENTLY leaves these): "+strings.Join(invalid, ", ")
		c2.Hint = "REINDEX INDEX CONCURRENTLY <name>; or DROP INDEX CONCURRENTLY <name> and create it again"
	}
	return []Check{c1, c2}, nil
}

func idempotency(ctx context.Context, pool *pgxpool.Pool) ([]Check, error) {
	var def string
	err := pool.QueryRow(ctx, `
		SELECT pg_get_constraintdef(oid) FROM pg_constraint
		WHERE conrelid = 'inbox_events'::regclass AND contype IN ('p', 'u') AND conname = 'inbox_events_pkey'`).Scan(&def)
	c1 := Check{Name: "idempotency constraint present", Status: Pass, Detail: "inbox_events " + def}
	if err == pgx.ErrNoRows || (err == nil && def != "PRIMARY KEY (source, event_id)") {
		c1.Status, c1.Detail = Fail, "inbox_events has no PRIMARY KEY (source, event_id); duplicates would be stored and applied twice"
		c1.Hint = "stop the receivers, remove duplicates, then: ALTER TABLE inbox_events ADD CONSTRAINT inbox_events_pkey PRIMARY KEY (source, event_id)"
	} else if err != nil {
		return nil, fmt.Errorf("read inbox constraints: %w", err)
	}
	var dups int
	var sample string
	err = pool.QueryRow(ctx, `
		SELECT count(*), coalesce(string_agg(source || '/' || event_id, ', ') FILTER (WHERE rn <= 5), '')
		FROM (SELECT source, event_id, row_number() OVER () AS rn FROM inbox_events
		      GROUP BY source, event_id HAVING count(*) > 1) d`).Scan(&dups, &sample)
	if err != nil {
		return nil, fmt.Errorf("look for duplicate events: %w", err)
	}
	c2 := Check{Name: "no event stored twice", Status: Pass, Detail: "every (source, event_id) is unique"}
	if dups > 0 {
		c2.Status, c2.Detail = Fail, fmt.Sprintf("%d keys stored more than once, e.g. %s", dups, sample)
		c2.Hint = "the idempotency constraint was missing or disabled; check whether these events' effects were applied twice before deleting the extra rows"
	}
	return []Check{c1, c2}, nil
}

func tables(ctx context.Context, pool *pgxpool.Pool) ([]Check, error) {
	var checks []Check
	for _, table := range []string{"river_job", "inbox_events"} {
		var size string
		var live, dead int64
		var vacuumed *string
		err := pool.QueryRow(ctx, `
			SELECT pg_size_pretty(pg_total_relation_size(relid)), n_live_tup, n_dead_tup,
			       to_char(greatest(last_autovacuum, last_vacuum), 'YYYY-MM-DD HH24:MI:SS TZ')
			FROM pg_stat_user_tables WHERE relname = $1 AND schemaname = current_schema()`, table).Scan(&size, &live, &dead, &vacuumed)
		if err != nil {
			return nil, fmt.Errorf("read statistics of %s: %w", table, err)
		}
		when := "never"
		if vacuumed != nil {
			when = *vacuumed
		}
		c := Check{Name: table + " vacuum health", Status: Pass,
			Detail: fmt.Sprintf("%s, %d live rows, %d dead, last vacuumed %s", size, live, dead, when)}
		// Dead tuples beyond a fifth of the table, in the tens of
		// thousands, slow River's fetch (its issue #59) and the inbox probe.
		if dead > 10_000 && dead*5 > live {
			c.Status = Warn
			c.Hint = fmt.Sprintf("VACUUM (ANALYZE) %s; and lower its autovacuum_vacuum_scale_factor (e.g. ALTER TABLE %s SET (autovacuum_vacuum_scale_factor = 0.02)); look for long transactions holding back the xmin horizon", table, table)
		}
		checks = append(checks, c)
	}
	return checks, nil
}

func connections(ctx context.Context, pool *pgxpool.Pool) ([]Check, error) {
	var maxConns, reserved, used int
	err := pool.QueryRow(ctx, `
		SELECT current_setting('max_connections')::int, current_setting('superuser_reserved_connections')::int,
		       (SELECT count(*) FROM pg_stat_activity)`).Scan(&maxConns, &reserved, &used)
	if err != nil {
		return nil, fmt.Errorf("read connection counts: %w", err)
	}
	free := maxConns - reserved - used
	c := Check{Name: "connection headroom", Status: Pass, Detail: fmt.Sprintf("%d of %d connections in use, %d free", used, maxConns-reserved, free)}
	if free*10 < maxConns-reserved {
		c.Status = Fail
		c.Hint = "lower DATABASE_MAX_CONNS (or WORKER_CONCURRENCY) on some processes, put PgBouncer in front (workers then need a direct connection for LISTEN), or raise max_connections"
	}
	return []Check{c}, nil
}

// durability checks the settings a 2xx relies on: the receiver answers only
// after COMMIT returns, which promises nothing if the commit is not flushed,
// or is flushed only on a primary that a failover then abandons. The
// settings are read in this session, so per-role or per-database overrides
// that apply to Hookline's own role show too.
func durability(ctx context.Context, pool *pgxpool.Pool) ([]Check, error) {
	var s durabilitySettings
	// pg_stat_replication hides its columns, sync_state included, from
	// roles without pg_read_all_stats: such a role would always count zero
	// asynchronous replicas, so it is told it cannot see them instead.
	err := pool.QueryRow(ctx, `
		SELECT current_setting('fsync'), current_setting('full_page_writes'), current_setting('synchronous_commit'),
		       current_setting('synchronous_standby_names'),
		       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE'),
		       (SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'async')`).
		Scan(&s.fsync, &s.fullPageWrites, &s.syncCommit, &s.syncStandbys, &s.seesReplicas, &s.asyncReplicas)
	if err != nil {
		return nil, fmt.Errorf("read durability settings: %w", err)
	}
	return []Check{judgeDurability(s)}, nil
}

// durabilitySettings are what judgeDurability weighs.
type durabilitySettings struct {
	fsync, fullPageWrites, syncCommit, syncStandbys string
	seesReplicas                                    bool
	asyncReplicas                                   int
}

func judgeDurability(s durabilitySettings) Check {
	c := Check{Name: "commits are durable", Status: Pass,
		Detail: fmt.Sprintf("fsync=%s full_page_writes=%s synchronous_commit=%s", s.fsync, s.fullPageWrites, s.syncCommit)}
	switch {
	case s.fsync != "on" || s.fullPageWrites != "on":
		c.Status = Fail
		c.Hint = "set fsync=on and full_page_writes=on: without them a Postgres crash can lose or corrupt events already acknowledged with 2xx"
	case s.syncCommit == "off":
		c.Status = Fail
		c.Hint = "set synchronous_commit=on (or remote_apply) for Hookline's role: with off, a Postgres crash loses the last acknowledged events"
	case s.syncStandbys != "" && (s.syncCommit == "local" || s.syncCommit == "remote_write"):
		c.Status = Warn
		c.Detail += fmt.Sprintf("; synchronous_standby_names=%q", s.syncStandbys)
		c.Hint = "with synchronous_commit=" + s.syncCommit + " a commit does not wait for the standby to flush it, so a failover can lose the last acknowledged events: use on or remote_apply"
	case !s.seesReplicas:
		c.Status = Warn
		c.Detail += "; replicas not visible to this role"
		c.Hint = "grant pg_read_all_stats to the role hookctl uses (or run doctor as a superuser) to check for asynchronous replicas, to which a failover could lose acknowledged events"
	case s.asyncReplicas > 0 && s.syncStandbys == "":
		c.Status = Warn
		c.Detail += fmt.Sprintf("; %d asynchronous replicas and no synchronous_standby_names", s.asyncReplicas)
		c.Hint = "a failover to an asynchronous replica can lose the last acknowledged events: set synchronous_standby_names, or accept that window"
	}
	return c
}
