package verify_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/verify"
)

func TestStripe(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":"evt_1","api_version":"2015-01-01","type":"charge.succeeded"}`)
	v, err := verify.NewStripe([]string{"whsec_new", "whsec_old"}, 5*time.Minute)
	require.NoError(t, err)
	now := time.Now()

	tests := []struct {
		name   string
		body   []byte
		header string
		reason verify.Reason // empty: must pass
	}{
		{"current secret", body, verify.SignStripe("whsec_new", body, now), ""},
		{"previous secret during rotation", body, verify.SignStripe("whsec_old", body, now), ""},
		{"api_version of any age is not checked", body, verify.SignStripe("whsec_new", body, now), ""},
		{"one of several v1 signatures matches", body, verify.SignStripe("whsec_x", body, now) + ",v1=" + sigOnly(verify.SignStripe("whsec_new", body, now)), ""},
		{"within tolerance", body, verify.SignStripe("whsec_new", body, now.Add(-4*time.Minute)), ""},
		{"tampered body", append([]byte(" "), body...), verify.SignStripe("whsec_new", body, now), verify.ReasonNoMatch},
		{"unknown secret", body, verify.SignStripe("whsec_other", body, now), verify.ReasonNoMatch},
		{"missing header", body, "", verify.ReasonMissingHeader},
		{"malformed header", body, "t=abc,v1", verify.ReasonMalformedHeader},
		{"stale timestamp", body, verify.SignStripe("whsec_new", body, now.Add(-6*time.Minute)), verify.ReasonTooOld},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := v.Verify(http.Header{verify.StripeHeader: {tt.header}}, tt.body)
			requireReason(t, err, tt.reason)
		})
	}
}

func TestStripeToleranceIsConfigurable(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":"evt_1"}`)
	v, err := verify.NewStripe([]string{"s"}, 30*time.Second)
	require.NoError(t, err)
	requireReason(t, v.Verify(http.Header{verify.StripeHeader: {verify.SignStripe("s", body, time.Now().Add(-time.Minute))}}, body), verify.ReasonTooOld)
}

func TestHMAC(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":"tr_1","type":"transfer.settled","account":"acc_9","amount_cents":1250}`)
	v, err := verify.NewHMAC(verify.HMACHeader, []string{"new", "old"})
	require.NoError(t, err)

	tests := []struct {
		name   string
		body   []byte
		header string
		reason verify.Reason
	}{
		{"current secret", body, verify.SignHMAC("new", body), ""},
		{"previous secret during rotation", body, verify.SignHMAC("old", body), ""},
		{"tampered body", append(body, ' '), verify.SignHMAC("new", body), verify.ReasonNoMatch},
		{"unknown secret", body, verify.SignHMAC("other", body), verify.ReasonNoMatch},
		{"missing header", body, "", verify.ReasonMissingHeader},
		{"not hex", body, strings.Repeat("g", 64), verify.ReasonMalformedHeader},
		{"truncated", body, verify.SignHMAC("new", body)[:62], verify.ReasonMalformedHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			requireReason(t, v.Verify(http.Header{verify.HMACHeader: {tt.header}}, tt.body), tt.reason)
		})
	}
}

// TestHMACKnownVector pins the scheme to an independently computed value:
// printf '%s' '{"id":"tr_1"}' | openssl dgst -sha256 -hmac secret
func TestHMACKnownVector(t *testing.T) {
	t.Parallel()
	const want = "16df3fb60e415efc019e16a1df3e46f376866feda971972b75fa6664e2e7b172"
	body := []byte(`{"id":"tr_1"}`)
	require.Equal(t, want, verify.SignHMAC("secret", body))
	v, err := verify.NewHMAC(verify.HMACHeader, []string{"secret"})
	require.NoError(t, err)
	require.NoError(t, v.Verify(http.Header{verify.HMACHeader: {want}}, body))
}

func TestConstructorsRefuseNoSecrets(t *testing.T) {
	t.Parallel()
	_, err := verify.NewStripe(nil, time.Minute)
	require.Error(t, err)
	_, err = verify.NewHMAC(verify.HMACHeader, nil)
	require.Error(t, err)
}

func requireReason(t *testing.T, err error, want verify.Reason) {
	t.Helper()
	if want == "" {
		require.NoError(t, err)
		return
	}
	require.ErrorIs(t, err, verify.ErrInvalidSignature)
	var ve *verify.Error
	require.True(t, errors.As(err, &ve))
	require.Equal(t, want, ve.Reason)
}

// sigOnly returns the v1 value of a Stripe-Signature header.
func sigOnly(header string) string {
	_, v1, _ := strings.Cut(header, "v1=")
	return v1
}
