package hookline

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoadWorkerConfig(t *testing.T) {
	t.Parallel()
	base := map[string]string{"DATABASE_URL": "postgres://x/y"}
	getenv := func(extra map[string]string) func(string) string {
		return func(k string) string {
			if v, ok := extra[k]; ok {
				return v
			}
			return base[k]
		}
	}

	t.Run("defaults", func(t *testing.T) {
		t.Parallel()
		cfg, err := LoadWorkerConfig(getenv(nil))
		require.NoError(t, err)
		require.Equal(t, 200, cfg.Concurrency)
		require.Equal(t, time.Minute, cfg.JobTimeout)
		require.Equal(t, 5*time.Minute, cfg.RescueAfter)
	})
	t.Run("concurrency out of range", func(t *testing.T) {
		t.Parallel()
		_, err := LoadWorkerConfig(getenv(map[string]string{"WORKER_CONCURRENCY": "0"}))
		require.ErrorContains(t, err, "WORKER_CONCURRENCY=0 out of range")
	})
	t.Run("rescue must outlast the job timeout", func(t *testing.T) {
		t.Parallel()
		_, err := LoadWorkerConfig(getenv(map[string]string{"WORKER_JOB_TIMEOUT": "5m", "WORKER_RESCUE_AFTER": "5m"}))
		require.ErrorContains(t, err, "WORKER_RESCUE_AFTER=5m0s must be longer than WORKER_JOB_TIMEOUT=5m0s")
	})
	t.Run("River UI is off without a credential", func(t *testing.T) {
		t.Parallel()
		cfg, err := LoadWorkerConfig(getenv(nil))
		require.NoError(t, err)
		require.False(t, cfg.riverUIAuth().configured())
	})
	t.Run("a River UI username needs a password, and a password a username", func(t *testing.T) {
		t.Parallel()
		for _, env := range []map[string]string{{"RIVERUI_USERNAME": "oncall"}, {"RIVERUI_PASSWORD": "secret"}} {
			_, err := LoadWorkerConfig(getenv(env))
			require.ErrorContains(t, err, "RIVERUI_USERNAME and RIVERUI_PASSWORD must be set together")
		}
	})
	t.Run("River UI credentials can come from files", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		write := func(name, value string) string {
			path := filepath.Join(dir, name)
			require.NoError(t, os.WriteFile(path, []byte(value+"\n"), 0o600))
			return path
		}
		cfg, err := LoadWorkerConfig(getenv(map[string]string{
			"RIVERUI_USERNAME":      "oncall",
			"RIVERUI_PASSWORD_FILE": write("password", "s3cret"),
			"RIVERUI_TOKEN_FILE":    write("token", "tok_abc"),
		}))
		require.NoError(t, err)
		require.Equal(t, uiAuth{username: "oncall", password: "s3cret", token: "tok_abc"}, cfg.riverUIAuth())
	})
	t.Run("periodic catch-up is off by default", func(t *testing.T) {
		t.Parallel()
		cfg, err := LoadWorkerConfig(getenv(nil))
		require.NoError(t, err)
		require.Zero(t, cfg.CatchupInterval)
		require.Equal(t, 72*time.Hour, cfg.CatchupLookback)
	})
	t.Run("periodic catch-up needs a Stripe key, which can come from a file", func(t *testing.T) {
		t.Parallel()
		_, err := LoadWorkerConfig(getenv(map[string]string{"WORKER_CATCHUP_INTERVAL": "15m"}))
		require.ErrorContains(t, err, "WORKER_CATCHUP_INTERVAL is set but STRIPE_API_KEY (or STRIPE_API_KEY_FILE) is not")
		path := filepath.Join(t.TempDir(), "key")
		require.NoError(t, os.WriteFile(path, []byte("rk_test_abc\n"), 0o600))
		cfg, err := LoadWorkerConfig(getenv(map[string]string{"WORKER_CATCHUP_INTERVAL": "15m", "STRIPE_API_KEY_FILE": path}))
		require.NoError(t, err)
		require.Equal(t, "rk_test_abc", cfg.StripeAPIKey)
	})
	t.Run("the catch-up look-back covers the interval and no more than Stripe keeps", func(t *testing.T) {
		t.Parallel()
		for _, lookback := range []string{"10m", "721h"} {
			_, err := LoadWorkerConfig(getenv(map[string]string{"WORKER_CATCHUP_INTERVAL": "15m", "STRIPE_API_KEY": "rk_test_abc", "WORKER_CATCHUP_LOOKBACK": lookback}))
			require.ErrorContains(t, err, "must be between WORKER_CATCHUP_INTERVAL=15m0s and 720h")
		}
	})
}
