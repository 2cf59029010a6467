package config_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/config"
)

type testConfig struct {
	Addr    string        `env:"ADDR" envDefault:":8080"`
	Secrets []string      `env:"SECRET"`
	Timeout time.Duration `env:"TIMEOUT" envDefault:"5s"`
	URL     string        `env:"URL,required,notEmpty"`
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoad(t *testing.T) {
	t.Parallel()
	secretFile := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secretFile, []byte("from-file-a,from-file-b\n"), 0o600))

	t.Run("defaults and values", func(t *testing.T) {
		t.Parallel()
		var c testConfig
		require.NoError(t, config.Load(env(map[string]string{"URL": "u", "SECRET": "a, b,", "TIMEOUT": "1m"}), &c))
		require.Equal(t, ":8080", c.Addr)
		require.Equal(t, time.Minute, c.Timeout)
		require.Equal(t, []string{"a", "b"}, config.List(c.Secrets))
	})
	t.Run("X_FILE replaces X, without its trailing newline", func(t *testing.T) {
		t.Parallel()
		var c testConfig
		require.NoError(t, config.Load(env(map[string]string{"URL": "u", "SECRET_FILE": secretFile}), &c))
		require.Equal(t, []string{"from-file-a", "from-file-b"}, config.List(c.Secrets))
	})
	t.Run("X and X_FILE together are refused", func(t *testing.T) {
		t.Parallel()
		var c testConfig
		err := config.Load(env(map[string]string{"URL": "u", "SECRET": "a", "SECRET_FILE": secretFile}), &c)
		require.ErrorContains(t, err, "both SECRET and SECRET_FILE are set")
	})
	t.Run("unreadable X_FILE names the variable and path", func(t *testing.T) {
		t.Parallel()
		var c testConfig
		err := config.Load(env(map[string]string{"URL": "u", "SECRET_FILE": "/nonexistent/s"}), &c)
		require.ErrorContains(t, err, `SECRET_FILE="/nonexistent/s"`)
	})
	t.Run("missing required variable is named", func(t *testing.T) {
		t.Parallel()
		var c testConfig
		require.ErrorContains(t, config.Load(env(nil), &c), "URL")
	})
	t.Run("bad duration is named", func(t *testing.T) {
		t.Parallel()
		var c testConfig
		require.ErrorContains(t, config.Load(env(map[string]string{"URL": "u", "TIMEOUT": "soon"}), &c), "TIMEOUT")
	})
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	got, err := config.Secrets(env(map[string]string{"S": " one ,two"}), "S")
	require.NoError(t, err)
	require.Equal(t, []string{"one", "two"}, got)
}

func TestRequiredNamesTheVariableAndWhatToGive(t *testing.T) {
	t.Parallel()
	got, err := config.Required(env(map[string]string{"KEY": "k"}), "KEY", "a key")
	require.NoError(t, err)
	require.Equal(t, "k", got)

	_, err = config.Required(env(nil), "KEY", "a key")
	require.EqualError(t, err, "KEY (or KEY_FILE) is not set: give a key")
	_, err = config.Required(env(nil), "KEY", "")
	require.EqualError(t, err, "KEY (or KEY_FILE) is not set")
}
