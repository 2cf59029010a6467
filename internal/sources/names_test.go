package sources_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/sources"
)

// TestNamesAreTheSourcesTheReceiverServes: hookctl shed checks a source
// against Names, which must list what Load builds, with no secret at hand.
func TestNamesAreTheSourcesTheReceiverServes(t *testing.T) {
	t.Parallel()
	env := map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_x", "BANK_WEBHOOK_SECRET": "bank_x", "GH_SECRET": "gh_x"}
	getenv := func(k string) string { return env[k] }
	path := filepath.Join(t.TempDir(), "sources.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`sources:
  - {name: github, type: github, secrets: [{label: current, env: GH_SECRET}]}
  - {name: bank-eu, type: hmac, secrets: [{label: current, env: BANK_WEBHOOK_SECRET}]}
`), 0o600))
	for _, p := range []string{"", path} {
		_, sums, err := sources.Load(getenv, p, sources.DefaultTolerance)
		require.NoError(t, err)
		var built []string
		for _, s := range sums {
			built = append(built, s.Name)
		}
		names, err := sources.Names(p)
		require.NoError(t, err)
		require.Equal(t, built, names, "HOOKLINE_SOURCES=%q", p)
	}

	_, err := sources.Names(filepath.Join(t.TempDir(), "missing.yaml"))
	require.ErrorContains(t, err, "cannot read the file")
}

func TestNearestSuggestsTheSourceAMisspeltNameMeant(t *testing.T) {
	t.Parallel()
	known := []string{"stripe", "bank", "github"}
	for name, want := range map[string]string{"strpe": "stripe", "Stripe": "stripe", "gihtub": "github", "shopify": "", "bnk": "bank"} {
		require.Equal(t, want, sources.Nearest(name, known), name)
	}
}
