package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/config"
)

func TestBuildSources(t *testing.T) {
	t.Parallel()
	secretFile := filepath.Join(t.TempDir(), "bank")
	require.NoError(t, os.WriteFile(secretFile, []byte("from-file\n"), 0o600))

	load := func(env map[string]string) (Config, error) {
		var cfg Config
		err := config.Load(func(k string) string { return env[k] }, &cfg)
		return cfg, err
	}

	t.Run("both sources from env and _FILE", func(t *testing.T) {
		t.Parallel()
		cfg, err := load(map[string]string{"DATABASE_URL": "u", "STRIPE_WEBHOOK_SECRET": "a,b", "BANK_WEBHOOK_SECRET_FILE": secretFile})
		require.NoError(t, err)
		sources, err := buildSources(cfg)
		require.NoError(t, err)
		require.Len(t, sources, 2)
		require.Equal(t, "stripe", sources[0].Name)
		require.Equal(t, "bank", sources[1].Name)
	})
	t.Run("a source with only blank secrets is refused by name", func(t *testing.T) {
		t.Parallel()
		cfg, err := load(map[string]string{"DATABASE_URL": "u", "STRIPE_WEBHOOK_SECRET": " , ", "BANK_WEBHOOK_SECRET": "b"})
		require.NoError(t, err)
		_, err = buildSources(cfg)
		require.ErrorContains(t, err, "STRIPE_WEBHOOK_SECRET (or STRIPE_WEBHOOK_SECRET_FILE) is not set")
	})
}
