package sources_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/sources"
)

const allTypes = `
sources:
  - name: stripe
    type: stripe
    livemode: true
    secrets:
      - {label: current, env: STRIPE_SECRET}
      - {label: previous, file: %s}
  - name: gh
    type: github
    secrets: [{label: current, env: GH_SECRET}]
  - name: shop
    type: shopify
    failure_status: 401
    secrets: [{label: current, env: SHOP_SECRET}]
  - name: slack
    type: slack
    tolerance: 2m
    secrets: [{label: current, env: SLACK_SECRET}]
  - name: svix
    type: standardwebhooks
    secrets: [{label: current, env: SVIX_SECRET}]
  - name: bank
    type: hmac
    max_body_bytes: 65536
    hmac: {header: X-Signature, prefix: "sha512=", algorithm: sha512, encoding: base64, timestamp_header: X-Timestamp, template: "{timestamp}.{body}"}
    id: {header: X-Request-Id}
    event_type: {json: meta.kind}
    secrets: [{label: current, env: BANK_SECRET}]
`

var secretEnv = map[string]string{
	"STRIPE_SECRET": "whsec_stripe_current", "GH_SECRET": "gh-secret-value", "SHOP_SECRET": "shop-secret-value",
	"SLACK_SECRET": "slack-secret-value", "SVIX_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "BANK_SECRET": "bank-secret-value",
}

func getenv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sources.yaml")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func TestLoadBuildsEveryTypeAndNeverExposesSecrets(t *testing.T) {
	t.Parallel()
	secretFile := filepath.Join(t.TempDir(), "previous")
	require.NoError(t, os.WriteFile(secretFile, []byte("whsec_stripe_previous\n"), 0o600))
	path := writeFile(t, fmt.Sprintf(allTypes, secretFile))

	srcs, sums, err := sources.Load(getenv(secretEnv), path, time.Minute)
	require.NoError(t, err)
	require.Len(t, srcs, 6)
	byName := map[string]sources.Summary{}
	for _, s := range sums {
		byName[s.Name] = s
	}
	require.Equal(t, []string{"current", "previous"}, byName["stripe"].SecretLabels)
	require.Equal(t, "/api/webhooks/shop", byName["shop"].Path)
	require.Equal(t, 401, byName["shop"].FailureStatus)
	require.Equal(t, 400, byName["gh"].FailureStatus)
	require.Equal(t, "header X-GitHub-Delivery", byName["gh"].ID)
	require.Equal(t, "header X-Request-Id", byName["bank"].ID)
	require.Equal(t, "JSON field meta.kind", byName["bank"].EventType)
	require.Equal(t, "JSON field event.type", byName["slack"].EventType)
	require.True(t, srcs[3].SlackChallenge)
	require.Equal(t, int64(65536), srcs[5].MaxBodyBytes)

	js, err := json.Marshal(sums)
	require.NoError(t, err)
	for _, secret := range append(values(secretEnv), "whsec_stripe_previous") {
		require.NotContains(t, string(js), secret)
	}
}

func TestLoadRefusesBadConfigurationNamingSourceAndField(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		file string
		want string
	}{
		{"unknown type", `sources: [{name: x, type: paypal, secrets: [{label: a, env: GH_SECRET}]}]`, `line 1: sources.x.type: unknown type "paypal"`},
		{"missing secret variable", `sources: [{name: x, type: github, secrets: [{label: a, env: NOPE}]}]`, `line 1: sources.x.secrets[0]: environment variable NOPE is not set`},
		{"no secrets", `sources: [{name: x, type: github}]`, `sources.x.secrets: at least one secret is required`},
		{"secret inline in the file", `sources: [{name: x, type: github, secrets: [{label: a, value: hunter2}]}]`, `sources.x.secrets[0]: unknown field "value": a secret is never written in the sources file`},
		{"secret with neither env nor file", `sources: [{name: x, type: github, secrets: [{label: a}]}]`, `sources.x.secrets[0]: set env (a variable name) or file`},
		{"secret with both env and file", `sources: [{name: x, type: github, secrets: [{label: a, env: GH_SECRET, file: /x}]}]`, `set env or file, not both`},
		{"duplicate label", `sources: [{name: x, type: github, secrets: [{label: a, env: GH_SECRET}, {label: a, env: GH_SECRET}]}]`, `sources.x.secrets[1].label: "a" is used twice`},
		{"bad name", `sources: [{name: "../etc", type: github, secrets: [{label: a, env: GH_SECRET}]}]`, `sources[0].name: "../etc" must be`},
		{"duplicate name", `sources: [{name: x, type: github, secrets: [{label: a, env: GH_SECRET}]}, {name: x, type: shopify, secrets: [{label: a, env: GH_SECRET}]}]`, `sources.x.name: "x" is declared twice (first at line 1)`},
		{"bad failure status", `sources: [{name: x, type: github, failure_status: 500, secrets: [{label: a, env: GH_SECRET}]}]`, `sources.x.failure_status: 500; want 400, 401 or 403`},
		{"locator with both header and json", `sources: [{name: x, type: hmac, id: {header: A, json: b}, secrets: [{label: a, env: GH_SECRET}]}]`, `sources.x.id: set exactly one of header and json`},
		{"livemode on a non-stripe source", `sources: [{name: x, type: github, livemode: true, secrets: [{label: a, env: GH_SECRET}]}]`, `sources.x.livemode: applies only to type stripe`},
		{"bad hmac algorithm", `sources: [{name: x, type: hmac, hmac: {header: X-Sig, algorithm: md5}, secrets: [{label: a, env: GH_SECRET}]}]`, `line 1: sources.x.hmac: Algorithm "md5" is not one of sha1, sha256, sha512`},
		{"tolerance on a scheme without timestamps", `sources: [{name: x, type: github, tolerance: 1m, secrets: [{label: a, env: GH_SECRET}]}]`, `sources.x.tolerance: type github signs no timestamp`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := sources.Load(getenv(secretEnv), writeFile(t, tt.file), time.Minute)
			require.ErrorContains(t, err, tt.want)
			for _, secret := range values(secretEnv) {
				require.NotContains(t, err.Error(), secret)
			}
		})
	}
}

func TestLoadFromEnvironmentWithoutAFile(t *testing.T) {
	t.Parallel()
	t.Run("stripe and bank from their variables, lists and _FILE", func(t *testing.T) {
		t.Parallel()
		bankFile := filepath.Join(t.TempDir(), "bank")
		require.NoError(t, os.WriteFile(bankFile, []byte("b1\n"), 0o600))
		srcs, sums, err := sources.Load(getenv(map[string]string{"STRIPE_WEBHOOK_SECRET": "s1, s2", "BANK_WEBHOOK_SECRET_FILE": bankFile}), "", time.Minute)
		require.NoError(t, err)
		require.Len(t, srcs, 2)
		require.Equal(t, "stripe", sums[0].Name)
		require.Equal(t, []string{"STRIPE_WEBHOOK_SECRET#1", "STRIPE_WEBHOOK_SECRET#2"}, sums[0].SecretLabels)
		require.Equal(t, "hmac", sums[1].Type)
	})
	t.Run("a missing secret names its variable", func(t *testing.T) {
		t.Parallel()
		_, _, err := sources.Load(getenv(map[string]string{"STRIPE_WEBHOOK_SECRET": "s"}), "", time.Minute)
		require.ErrorContains(t, err, "BANK_WEBHOOK_SECRET (or BANK_WEBHOOK_SECRET_FILE) is not set")
		_, _, err = sources.Load(getenv(map[string]string{"BANK_WEBHOOK_SECRET": " , "}), "", time.Minute)
		require.ErrorContains(t, err, "STRIPE_WEBHOOK_SECRET (or STRIPE_WEBHOOK_SECRET_FILE) is not set")
	})
}

func values(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
