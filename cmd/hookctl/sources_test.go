package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSourcesPrintsTheFilesErrorsAsTheyAre: `hookctl sources` hands the
// operator the sources package's messages whole, headed by the setting and
// the file, and prints no table.
func TestSourcesPrintsTheFilesErrorsAsTheyAre(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, want string
	}{
		{"a misspelt field", "sources:\n  - name: stripe\n    type: stripe\n    tolerence: 5m\n    secrets: [{label: current, env: STRIPE_WEBHOOK_SECRET}]\n",
			`line 4: sources.stripe: unknown field "tolerence" (did you mean "tolerance"?)`},
		{"several problems", "sources:\n  - name: stripe\n    type: stripe\n    tolerence: 5m\n    livemode: maybe\n",
			"2 problems:\n" +
				`  line 4: sources.stripe: unknown field "tolerence" (did you mean "tolerance"?)` + "\n" +
				`  line 5: sources.stripe.livemode: want true or false, not text`},
		{"an empty file", "",
			"the file holds no YAML (it is empty, or only comments); it should hold a list of sources, such as sources: [{name: stripe, type: stripe, secrets: [{label: current, env: STRIPE_WEBHOOK_SECRET}]}]"},
		{"a missing secret", "sources: [{name: stripe, type: stripe, secrets: [{label: current, env: NOT_SET_ANYWHERE}]}]\n",
			`line 1: sources.stripe.secrets[0]: environment variable NOT_SET_ANYWHERE is not set`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "sources.yaml")
			require.NoError(t, os.WriteFile(path, []byte(tt.file), 0o600))
			getenv := func(k string) string { return map[string]string{"HOOKLINE_SOURCES": path}[k] }
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{"hookctl", "sources"}, getenv, &stdout, &stderr)
			require.EqualError(t, err, "HOOKLINE_SOURCES="+path+": "+tt.want)
			require.Empty(t, stdout.String())
		})
	}
}
