package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/catchup"
	"github.com/hookline/hookline/internal/stripemocktest"
)

func (b *testBundle) count(t *testing.T, query string) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), query).Scan(&n))
	return n
}

func TestCatchupStripeStoresWhatTheInboxLacksAndSaysSo(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := stripemocktest.NewFake(t, 150)
	url := f.Start()
	b.addEvent(t, "stripe", "evt_0003", "charge.succeeded")
	b.addEvent(t, "stripe", "evt_0140", "charge.succeeded")
	b.getenv = b.withEnv(map[string]string{"STRIPE_API_KEY": f.Key})

	stdout, stderr, err := b.hookctl(t, "catchup", "stripe", "--since", "72h", "--api-url", url, "--dry-run")
	require.NoError(t, err, stderr)
	require.Contains(t, stdout, "listed 150, already stored 2, would store (dry run) 148")
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM inbox_events`))

	stdout, stderr, err = b.hookctl(t, "catchup", "stripe", "--since", "72h", "--api-url", url, "--reason", "INC-9")
	require.NoError(t, err, stderr)
	require.Contains(t, stdout, "listed 150, already stored 2, stored now 148")
	require.Contains(t, stdout, "… and 128 more (--json lists them all)")
	require.NotContains(t, stderr, "\r", "no progress bar without a terminal")
	require.Equal(t, 150, b.count(t, `SELECT count(*) FROM inbox_events`))
	require.Equal(t, 148, b.count(t, `SELECT count(*) FROM recovery_audit WHERE recovered_by = 'tester' AND reason = 'INC-9' AND origin = 'stripe_api'`))

	stdout, _, err = b.hookctl(t, "events", "get", "stripe", "evt_0100")
	require.NoError(t, err)
	require.Regexp(t, `Origin +recovered from stripe_api by tester at .* \(job \d+\): INC-9`, stdout)
	stdout, _, err = b.hookctl(t, "events", "get", "stripe", "evt_0003")
	require.NoError(t, err)
	require.NotContains(t, stdout, "Origin", "an event delivered by webhook")

	var rep stripeReport
	b.hookctlJSON(t, &rep, "catchup", "stripe", "--since", "72h", "--api-url", url, "--json")
	require.Equal(t, 150, rep.Listed)
	require.Equal(t, 150, rep.AlreadyStored)
	require.Equal(t, 0, rep.Stored)
	require.Empty(t, rep.Recovered)
	require.Empty(t, rep.Error)
}

func TestCatchupStripeNeverPrintsTheAPIKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := stripemocktest.NewFake(t, 120)
	url := f.Start()
	keyFile := filepath.Join(t.TempDir(), "stripe_key")
	const wrongKey = "rk_test_51SecretThatMustNotLeak9xYz"

	tests := []struct {
		name, key string
		fail      func(n int, after string) (int, http.Header)
		wantErr   bool
	}{
		// The fake, unlike Stripe, quotes a wrong key in full.
		{name: "a wrong key", key: wrongKey, wantErr: true},
		{name: "a rate limit and a retry", key: f.Key, fail: func(n int, _ string) (int, http.Header) {
			if n == 2 {
				return http.StatusTooManyRequests, http.Header{"Retry-After": {"0"}}
			}
			return 0, nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(keyFile, []byte(tt.key+"\n"), 0o600))
			f.Mu.Lock()
			f.Fail = tt.fail
			f.Mu.Unlock()
			getenv := b.withEnv(map[string]string{"STRIPE_API_KEY_FILE": keyFile})
			for _, args := range [][]string{{}, {"--json"}} {
				var stdout, stderr bytes.Buffer
				err := run(context.Background(), append([]string{"hookctl", "catchup", "stripe", "--since", "3d", "--api-url", url}, args...), getenv, &stdout, &stderr)
				all := stdout.String() + stderr.String()
				if err != nil {
					all += err.Error()
				}
				require.Equal(t, tt.wantErr, err != nil, "error: %v", err)
				require.NotContains(t, all, tt.key)
				require.NotContains(t, all, tt.key[len(tt.key)-8:], "not even the key's tail")
			}
		})
	}
	require.Contains(t, strings.Join(f.Queries(), "\n"), "limit=100")
}

func TestCatchupStripeNeedsAKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, _, err := b.hookctl(t, "catchup", "stripe", "--since", "72h")
	require.ErrorContains(t, err, "STRIPE_API_KEY (or STRIPE_API_KEY_FILE) is not set")
}

func TestCatchupStripeReportsWhatItStoredBeforeFailing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := stripemocktest.NewFake(t, 150)
	f.Fail = func(_ int, after string) (int, http.Header) {
		if after != "" {
			return http.StatusBadRequest, nil
		}
		return 0, nil
	}
	url := f.Start()
	b.getenv = b.withEnv(map[string]string{"STRIPE_API_KEY": f.Key})
	stdout, _, err := b.hookctl(t, "catchup", "stripe", "--since", "72h", "--api-url", url)
	require.ErrorContains(t, err, "the 100 events stored before are committed: run it again to continue")
	require.Contains(t, stdout, "listed 100, already stored 0, stored now 100")
	require.Equal(t, 100, b.count(t, `SELECT count(*) FROM recovery_audit`))
}

func TestCatchupProgressBarIsDrawnOnlyOnATerminal(t *testing.T) {
	t.Parallel()
	since := time.Now().Add(-10 * time.Hour)
	sum := catchup.Summary{Listed: 300, AlreadyStored: 200, Stored: 100, Oldest: time.Now().Add(-5 * time.Hour)}

	var term bytes.Buffer
	p := newProgress(&term, true, since)
	p.update(sum)
	p.done()
	require.Regexp(t, `\[#{14,15}-{15,16}\]  50%  listed 300, already stored 200, stored 100`, term.String())
	require.True(t, strings.HasSuffix(term.String(), "\r\033[K"), "the bar is cleared at the end")

	var pipe bytes.Buffer
	p = newProgress(&pipe, false, since)
	p.update(sum)
	p.done()
	require.Empty(t, pipe.String())
}

func TestCatchupStripePassesItsFiltersToStripe(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := stripemocktest.NewFake(t, 10)
	url := f.Start()
	b.getenv = b.withEnv(map[string]string{"STRIPE_API_KEY": f.Key})
	stdout, stderr, err := b.hookctl(t, "catchup", "stripe", "--since", "2026-01-02T03:04:05Z", "--api-url", url,
		"--type", "charge.*", "--failed-only", "--source", "stripe_eu", "--by", "bob")
	require.NoError(t, err, stderr)
	require.Contains(t, stdout, "stripe_eu since 2026-01-02 03:04:05Z")
	q := f.Queries()[0]
	for _, want := range []string{"created[gte]=1767323045", "type=charge.%2A", "delivery_success=false"} {
		require.Contains(t, q, want)
	}
	require.Equal(t, 5, b.count(t, `SELECT count(*) FROM recovery_audit WHERE source = 'stripe_eu' AND recovered_by = 'bob'`))
}
