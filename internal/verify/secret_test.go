package verify_test

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/verify"
)

// constructors builds every verifier from the same secrets, so each rule
// about secrets is checked once for all of them.
var constructors = map[string]func([]verify.Secret) error{
	"stripe": func(s []verify.Secret) error {
		_, err := verify.NewStripeWith(s, verify.StripeOptions{})
		return err
	},
	"github": func(s []verify.Secret) error {
		_, err := verify.NewGitHub(s)
		return err
	},
	"shopify": func(s []verify.Secret) error {
		_, err := verify.NewShopify(s)
		return err
	},
	"slack": func(s []verify.Secret) error {
		_, err := verify.NewSlack(s, verify.SlackOptions{})
		return err
	},
	"standardwebhooks": func(s []verify.Secret) error {
		_, err := verify.NewStandardWebhooks(s, verify.StandardWebhooksOptions{})
		return err
	},
	"hmac": func(s []verify.Secret) error {
		_, err := verify.NewHMACWith(s, verify.HMACOptions{Header: verify.HMACHeader})
		return err
	},
}

func TestConstructorsRefuseBadSecrets(t *testing.T) {
	t.Parallel()
	const ok = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // valid for every scheme
	for name, build := range constructors {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			require.NoError(t, build(rotation(ok, ok)))

			err := build(nil)
			require.ErrorContains(t, err, name)
			require.ErrorContains(t, err, "no secrets configured")

			err = build([]verify.Secret{{Label: "current", Value: []byte(ok)}, {Label: "previous"}})
			require.ErrorContains(t, err, `secret 2 ("previous") is empty`)
			require.NotContains(t, err.Error(), ok)

			err = build([]verify.Secret{{Value: nil}})
			require.ErrorContains(t, err, "secret 1 (unlabelled) is empty")
		})
	}
}

func TestConstructorsRefuseBadTolerance(t *testing.T) {
	t.Parallel()
	_, err := verify.NewStripeWith(rotation("s"), verify.StripeOptions{Tolerance: -time.Second})
	require.ErrorContains(t, err, "negative")
	_, err = verify.NewSlack(rotation("s"), verify.SlackOptions{Tolerance: -time.Second})
	require.ErrorContains(t, err, "negative")
	_, err = verify.NewStandardWebhooks(rotation("c2VjcmV0"), verify.StandardWebhooksOptions{Tolerance: -time.Second})
	require.ErrorContains(t, err, "negative")
	_, err = verify.NewStripe([]string{"s"}, 0)
	require.ErrorContains(t, err, "positive")
}

// TestLegacyConstructorsRefuseEmptySecret: the original constructors now
// share the new rules, so an empty entry in a comma-separated list of
// secrets is refused rather than accepted as an empty HMAC key.
func TestLegacyConstructorsRefuseEmptySecret(t *testing.T) {
	t.Parallel()
	_, err := verify.NewHMAC(verify.HMACHeader, []string{"a", ""})
	require.ErrorContains(t, err, "is empty")
	_, err = verify.NewStripe([]string{""}, time.Minute)
	require.ErrorContains(t, err, "is empty")
}

func TestSecretNeverPrintsItsValue(t *testing.T) {
	t.Parallel()
	s := verify.Secret{Label: "current", Value: []byte("hunter2")}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "secret", s, "secrets", []verify.Secret{s})
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s), fmt.Sprint([]verify.Secret{s}), logged.String()} {
		require.NotContains(t, out, "hunter2")
		require.Contains(t, out, "current")
	}
}

// TestSecretsAreCopied: a caller reusing its buffer after building a
// verifier must not change the verifier's key.
func TestSecretsAreCopied(t *testing.T) {
	t.Parallel()
	buf := []byte("secret")
	v, err := verify.NewGitHub([]verify.Secret{{Label: "current", Value: buf}})
	require.NoError(t, err)
	copy(buf, "XXXXXX")
	body := []byte("{}")
	require.NoError(t, v.Verify(headers(verify.GitHubSignatureHeader, verify.SignGitHub("secret", body)), body))
}

func TestErrorsMatchErrInvalidSignature(t *testing.T) {
	t.Parallel()
	for _, r := range []verify.Reason{verify.ReasonTooNew, verify.ReasonLivemodeMismatch} {
		err := error(&verify.Error{Reason: r})
		require.True(t, errors.Is(err, verify.ErrInvalidSignature))
		require.Contains(t, err.Error(), string(r))
	}
}
