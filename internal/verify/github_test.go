package verify_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/verify"
)

// TestGitHubOfficialVector is the example in "Testing the webhook payload
// validation" of
// https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
func TestGitHubOfficialVector(t *testing.T) {
	t.Parallel()
	const (
		secret  = "It's a Secret to Everybody"
		payload = "Hello, World!"
		want    = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	)
	require.Equal(t, want, verify.SignGitHub(secret, []byte(payload)))
	v, err := verify.NewGitHub(rotation(secret))
	require.NoError(t, err)
	require.NoError(t, v.Verify(headers(verify.GitHubSignatureHeader, want), []byte(payload)))
	requireReason(t, v.Verify(headers(verify.GitHubSignatureHeader, want), []byte("Hello, World?")), verify.ReasonNoMatch)
}

func TestGitHub(t *testing.T) {
	t.Parallel()
	body := []byte(`{"action":"opened","number":1}`)
	v, err := verify.NewGitHub(rotation("new", "old"))
	require.NoError(t, err)
	good := verify.SignGitHub("new", body)

	tests := []struct {
		name   string
		body   []byte
		header string
		reason verify.Reason
	}{
		{"current secret", body, good, ""},
		{"previous secret during rotation", body, verify.SignGitHub("old", body), ""},
		{"upper-case hex digits", body, "sha256=" + strings.ToUpper(good[7:]), ""},
		{"tampered body", append(body, ' '), good, verify.ReasonNoMatch},
		{"wrong secret", body, verify.SignGitHub("other", body), verify.ReasonNoMatch},
		{"missing header", body, "", verify.ReasonMissingHeader},
		{"no prefix", body, good[7:], verify.ReasonMalformedHeader},
		{"sha1 prefix", body, "sha1=" + good[7:], verify.ReasonMalformedHeader},
		{"prefix in upper case", body, "SHA256=" + good[7:], verify.ReasonMalformedHeader},
		{"truncated", body, good[:len(good)-2], verify.ReasonMalformedHeader},
		{"not hex", body, "sha256=" + strings.Repeat("g", 64), verify.ReasonMalformedHeader},
		{"two signatures", body, good + "," + good, verify.ReasonMalformedHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			requireReason(t, v.Verify(headers(verify.GitHubSignatureHeader, tt.header), tt.body), tt.reason)
		})
	}
}
