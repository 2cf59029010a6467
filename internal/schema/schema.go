// Package schema tells a receiver or worker whether its database has the
// migrations of its build, so that readiness fails, and start-up stops,
// with the fix (`hookctl migrate`) rather than with "relation does not
// exist" on every request.
package schema

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookline/hookline/internal/logging"
	"github.com/hookline/hookline/internal/migrate"
)

// ErrNotMigrated is wrapped by Checker's errors when the database lacks
// migrations of this build: tables, or changes to them, that the code
// relies on.
var ErrNotMigrated = errors.New("database is not migrated")

// The times a Checker keeps a result. A migrated database stays migrated,
// so that result is kept longer; any other is checked again soon, so that
// a process becomes ready within seconds of `hookctl migrate`.
const (
	checkOKFor    = 30 * time.Second
	checkRetryFor = 5 * time.Second
)

// Check returns nil when pool's database has every migration of this
// build's core set (River's and Hookline's); an error wrapping
// ErrNotMigrated, which names the pending migrations and says to run
// `hookctl migrate`; or the error that kept it from checking. It reads the
// database each time and logs nothing, for a start-up check whose caller
// reports the error; readiness uses a Checker.
func Check(ctx context.Context, pool *pgxpool.Pool) error {
	res, err := migrate.Pending(ctx, pool)
	if err != nil {
		return logging.DropRepeatedLines(fmt.Errorf("check the database's migrations: %w", err))
	}
	if !res.Empty() {
		return notMigratedError(res)
	}
	return nil
}

// Checker tells whether a database has every migration of this build's
// core set (River's and Hookline's), for readiness probes. A check is a
// handful of queries (migrate.Pending), and probes come every few seconds
// from every replica, so a result is kept for a while: 30s when nothing is
// pending, 5s when something is; a failed check is not kept. It logs when
// the database becomes unmigrated or migrated, and failed checks when they
// start and then once a minute.
//
// A Checker is safe for concurrent use.
type Checker struct {
	pool     *pgxpool.Pool
	logger   *slog.Logger
	failures *logging.Failures
	now      func() time.Time

	// sem guards the fields below; a channel, so that a caller waiting for
	// another's check still honours its own context.
	sem         chan struct{}
	checked     bool
	checkedAt   time.Time
	err         error
	notMigrated bool
}

// NewChecker returns a Checker of pool's database.
func NewChecker(pool *pgxpool.Pool, logger *slog.Logger) *Checker {
	return &Checker{
		pool: pool, logger: logger, now: time.Now, sem: make(chan struct{}, 1),
		failures: logging.NewFailures(logger, "could not check the database's migrations", logging.DefaultEvery),
	}
}

// Check returns nil when no migration of the core set is pending; an error
// wrapping ErrNotMigrated, which names the pending migrations and says to
// run `hookctl migrate`; or the error that kept it from checking (the
// database is unreachable). The result may be up to 30s old.
func (c *Checker) Check(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("check the database's migrations: %w", ctx.Err())
	}
	defer func() { <-c.sem }()
	keep := checkRetryFor
	if c.checked && c.err == nil {
		keep = checkOKFor
	}
	if c.checked && c.now().Sub(c.checkedAt) < keep {
		return c.err
	}

	res, err := migrate.Pending(ctx, c.pool)
	if err != nil {
		err = logging.DropRepeatedLines(fmt.Errorf("check the database's migrations: %w", err))
		if ctx.Err() != nil {
			return err // the caller gave up; that says nothing of the database
		}
		// Not kept: a database that is back must not read as down for 5s
		// more. Readiness pings first, so this is rarely reached while it
		// is down.
		c.failures.Fail(err)
		return err
	}
	c.failures.OK()
	c.checked, c.checkedAt, c.err = true, c.now(), nil
	if !res.Empty() {
		c.err = notMigratedError(res)
		if !c.notMigrated {
			c.logger.Error("database is not migrated: run `hookctl migrate`", "pending_river", res.River, "pending_hookline", res.Hookline)
		}
	} else if c.notMigrated {
		c.logger.Info("database migrated")
	}
	c.notMigrated = !res.Empty()
	return c.err
}

// Watch checks every interval until ctx ends, so that the log says when
// the database becomes migrated, or stops being so, even when nothing
// probes the process.
func (c *Checker) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		_ = c.Check(ctx) // logged by Check
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// notMigratedError names the pending migrations and the fix:
// "database is not migrated: River migrations 1-6 and Hookline migration 9
// are pending; run `hookctl migrate`".
func notMigratedError(res migrate.Result) error {
	var parts []string
	n := 0
	add := func(name string, versions []int64) {
		if len(versions) == 0 {
			return
		}
		n += len(versions)
		noun := " migration "
		if len(versions) > 1 {
			noun = " migrations "
		}
		parts = append(parts, name+noun+ranges(versions))
	}
	river := make([]int64, len(res.River))
	for i, v := range res.River {
		river[i] = int64(v)
	}
	add("River", river)
	add("Hookline", res.Hookline)
	verb := "is"
	if n > 1 {
		verb = "are"
	}
	return fmt.Errorf("%w: %s %s pending; run `hookctl migrate`", ErrNotMigrated, strings.Join(parts, " and "), verb)
}

// ranges writes ascending versions with runs shortened: "1-8, 10".
func ranges(versions []int64) string {
	var out []string
	for i := 0; i < len(versions); {
		j := i
		for j+1 < len(versions) && versions[j+1] == versions[j]+1 {
			j++
		}
		s := strconv.FormatInt(versions[i], 10)
		if j > i {
			s += "-" + strconv.FormatInt(versions[j], 10)
		}
		out = append(out, s)
		i = j + 1
	}
	return strings.Join(out, ", ")
}
