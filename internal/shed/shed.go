// Package shed is the receiver's emergency lever in a flood: a per-source
// rate limit, set live by an operator (hookctl shed), above which the
// receiver answers 429 with Retry-After. Shed requests are not lost: every
// provider retries a 429 later, and nothing was acknowledged.
package shed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/time/rate"

	"github.com/hookline/hookline/internal/logging"
)

// keyPrefix prefixes a source's setting in hookline_settings.
const keyPrefix = "shed."

// Key returns the hookline_settings key of source's rate limit.
func Key(source string) string { return keyPrefix + source }

// Setting is a source's shed limit as stored.
type Setting struct {
	// Rate is the events per second admitted; the rest get 429.
	Rate float64 `json:"rate"`
}

// Querier reads settings: a pool, a connection or a tx.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Limiter admits requests per source under the current shed limits. With
// no limit set for a source, everything is admitted.
type Limiter struct {
	mu       sync.RWMutex
	limiters map[string]*rate.Limiter
	rates    map[string]float64
}

// NewLimiter returns a limiter that admits everything until Refresh.
func NewLimiter() *Limiter {
	return &Limiter{limiters: map[string]*rate.Limiter{}, rates: map[string]float64{}}
}

// Allow reports whether a request for source may proceed now.
func (l *Limiter) Allow(source string) bool {
	l.mu.RLock()
	lim := l.limiters[source]
	l.mu.RUnlock()
	return lim == nil || lim.Allow()
}

// Refresh reads every shed setting and applies the changes; a source whose
// setting is gone is no longer limited.
func (l *Limiter) Refresh(ctx context.Context, q Querier) error {
	rows, err := q.Query(ctx, `SELECT key, value FROM hookline_settings WHERE key LIKE 'shed.%'`)
	if err != nil {
		return fmt.Errorf("read shed settings: %w", err)
	}
	type kv struct {
		key   string
		value []byte
	}
	settings, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (kv, error) {
		var s kv
		return s, r.Scan(&s.key, &s.value)
	})
	if err != nil {
		return fmt.Errorf("read shed settings: %w", err)
	}
	next := map[string]float64{}
	for _, s := range settings {
		var st Setting
		if err := json.Unmarshal(s.value, &st); err != nil {
			return fmt.Errorf("shed setting %s=%s: %w", s.key, s.value, err)
		}
		next[strings.TrimPrefix(s.key, keyPrefix)] = st.Rate
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for src, r := range next {
		if old, ok := l.rates[src]; ok && old == r {
			continue
		}
		// A burst of one second's worth lets a steady sender through at
		// its rate while still cutting a flood.
		burst := max(1, int(r))
		if r == 0 {
			burst = 0 // admit nothing, not one request per change
		}
		l.limiters[src] = rate.NewLimiter(rate.Limit(r), burst)
		l.rates[src] = r
	}
	for src := range l.rates {
		if _, ok := next[src]; !ok {
			delete(l.limiters, src)
			delete(l.rates, src)
		}
	}
	return nil
}

// Run refreshes every interval until ctx ends. A failed refresh keeps the
// limits in force: a database blip must not lift a shed. Failures are
// logged when they start, then once a minute with a count, and when they
// stop: a database that is down must not write a line every interval.
func (l *Limiter) Run(ctx context.Context, q Querier, interval time.Duration, logger *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	failures := logging.NewFailures(logger, "could not refresh shed limits", logging.DefaultEvery)
	for {
		err := l.Refresh(ctx, q)
		switch {
		case err == nil:
			failures.OK()
		case !errors.Is(err, context.Canceled) && ctx.Err() == nil:
			failures.Fail(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Active is a source's shed limit in force.
type Active struct {
	Source string `json:"source"`
	// Rate is the events per second each receiver admits from the source.
	Rate  float64   `json:"rate"`
	SetBy string    `json:"set_by"`
	SetAt time.Time `json:"set_at"`
}

// List returns the shed limits in force, by source.
func List(ctx context.Context, q Querier) ([]Active, error) {
	rows, err := q.Query(ctx, `
		SELECT substr(key, length($1) + 1), value, updated_by, updated_at
		FROM hookline_settings WHERE starts_with(key, $1) ORDER BY key`, keyPrefix)
	if err != nil {
		return nil, fmt.Errorf("list shed limits: %w", err)
	}
	active, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Active, error) {
		var a Active
		var value []byte
		if err := r.Scan(&a.Source, &value, &a.SetBy, &a.SetAt); err != nil {
			return a, err
		}
		var st Setting
		if err := json.Unmarshal(value, &st); err != nil {
			return a, fmt.Errorf("shed setting for %q=%s: %w", a.Source, value, err)
		}
		a.Rate = st.Rate
		return a, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list shed limits: %w", err)
	}
	return active, nil
}

// Beginner starts transactions; *pgxpool.Pool is one.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Set limits source to r events per second, or lifts its limit when r is
// negative. An empty source with a negative r lifts every limit.
func Set(ctx context.Context, db Beginner, source string, r float64, by string) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		var err error
		switch {
		case r >= 0:
			v, _ := json.Marshal(Setting{Rate: r})
			_, err = tx.Exec(ctx, `
				INSERT INTO hookline_settings (key, value, updated_by) VALUES ($1, $2, $3)
				ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now(), updated_by = EXCLUDED.updated_by`,
				Key(source), v, by)
		case source == "":
			_, err = tx.Exec(ctx, `DELETE FROM hookline_settings WHERE key LIKE 'shed.%'`)
		default:
			_, err = tx.Exec(ctx, `DELETE FROM hookline_settings WHERE key = $1`, Key(source))
		}
		if err != nil {
			return fmt.Errorf("write shed limit for %q: %w", source, err)
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify('hookline_settings', $1)`, Key(source))
		return err
	})
}
