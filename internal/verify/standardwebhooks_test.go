package verify_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/verify"
)

// The Standard Webhooks libraries' test constants, from
// https://github.com/standard-webhooks/standard-webhooks/blob/main/libraries/go/webhook_test.go
// and libraries/python/tests/test_webhooks.py in the same repository.
const (
	swMsgID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	swPayload   = `{"test": 2432232314}`
	swSecret    = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	swTimestamp = 1614265330
	// swSignature is TestWebhookSign's (Go) and test_sign_function's
	// (Python) expected value for whsec_ + swSecret at swTimestamp.
	swSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func swHeaders(prefix, id, ts, sig string) http.Header {
	return headers(prefix+"-id", id, prefix+"-timestamp", ts, prefix+"-signature", sig)
}

func TestStandardWebhooksOfficialVector(t *testing.T) {
	t.Parallel()
	sig, err := verify.SignStandardWebhooks("whsec_"+swSecret, swMsgID, time.Unix(swTimestamp, 0), []byte(swPayload))
	require.NoError(t, err)
	require.Equal(t, swSignature, sig)

	// The libraries accept the secret with and without its prefix
	// (TestWebhookPrefix, test_signature_verification_with_and_without_prefix).
	for _, secret := range []string{"whsec_" + swSecret, swSecret} {
		v, err := verify.NewStandardWebhooks(rotation(secret), verify.StandardWebhooksOptions{Now: fixedNow(swTimestamp)})
		require.NoError(t, err)
		for _, prefix := range []string{"webhook", "svix"} {
			require.NoError(t, v.Verify(swHeaders(prefix, swMsgID, fmt.Sprint(swTimestamp), swSignature), []byte(swPayload)))
		}
	}
}

// TestStandardWebhooksOfficialNegatives replays the libraries' negative
// cases, from the same test files, at the vector's timestamp.
func TestStandardWebhooksOfficialNegatives(t *testing.T) {
	t.Parallel()
	v, err := verify.NewStandardWebhooks(rotation("whsec_"+swSecret), verify.StandardWebhooksOptions{Now: fixedNow(swTimestamp)})
	require.NoError(t, err)
	ts := fmt.Sprint(swTimestamp)
	at := func(unix int64) (string, string) {
		s, err := verify.SignStandardWebhooks(swSecret, swMsgID, time.Unix(unix, 0), []byte(swPayload))
		require.NoError(t, err)
		return fmt.Sprint(unix), s
	}
	const tolerance = 5 * 60
	oldTS, oldSig := at(swTimestamp - tolerance - 1)
	newTS, newSig := at(swTimestamp + tolerance + 1)
	tests := []struct {
		name        string
		id, ts, sig string
		reason      verify.Reason
	}{
		{"missing id returns error", "", ts, swSignature, verify.ReasonMissingHeader},
		{"missing timestamp returns error", swMsgID, "", swSignature, verify.ReasonMissingHeader},
		{"missing signature returns error", swMsgID, ts, "", verify.ReasonMissingHeader},
		{"invalid signature is invalid (Go)", swMsgID, ts, "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=", verify.ReasonNoMatch},
		{"invalid signature (Python)", swMsgID, ts, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=", verify.ReasonNoMatch},
		{"invalid timestamp (Python)", swMsgID, "hello", swSignature, verify.ReasonMalformedHeader},
		{"old timestamp fails", swMsgID, oldTS, oldSig, verify.ReasonTooOld},
		{"new timestamp fails", swMsgID, newTS, newSig, verify.ReasonTooNew},
		{"valid multi sig is valid", swMsgID, ts, strings.Join([]string{
			"v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
			"v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
			swSignature,
			"v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
		}, " "), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			requireReason(t, v.Verify(swHeaders("webhook", tt.id, tt.ts, tt.sig), []byte(swPayload)), tt.reason)
		})
	}
}

func TestStandardWebhooks(t *testing.T) {
	t.Parallel()
	const now = 1700000000
	const cur, prev = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "whsec_ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
	body := []byte(`{"type":"user.created","data":{"id":"u_1"}}`)
	v, err := verify.NewStandardWebhooks(rotation(cur, prev), verify.StandardWebhooksOptions{Now: fixedNow(now)})
	require.NoError(t, err)
	sign := func(secret, id string, unix int64) string {
		s, err := verify.SignStandardWebhooks(secret, id, time.Unix(unix, 0), body)
		require.NoError(t, err)
		return s
	}
	good, ts := sign(cur, "msg_1", now), fmt.Sprint(now)

	tests := []struct {
		name        string
		body        []byte
		prefix      string
		id, ts, sig string
		reason      verify.Reason
	}{
		{"current secret", body, "webhook", "msg_1", ts, good, ""},
		{"previous secret during rotation", body, "webhook", "msg_1", ts, sign(prev, "msg_1", now), ""},
		{"svix header names", body, "svix", "msg_1", ts, good, ""},
		{"asymmetric v1a entry ignored", body, "webhook", "msg_1", ts, "v1a,aGVsbG8= " + good, ""},
		{"tampered body", append(body, ' '), "webhook", "msg_1", ts, good, verify.ReasonNoMatch},
		{"wrong secret", body, "webhook", "msg_1", ts, sign("whsec_b3RoZXI=", "msg_1", now), verify.ReasonNoMatch},
		{"another id", body, "webhook", "msg_2", ts, good, verify.ReasonNoMatch},
		{"no v1 entry", body, "webhook", "msg_1", ts, "v2," + good[3:], verify.ReasonMalformedHeader},
		{"v1 not base64", body, "webhook", "msg_1", ts, "v1,not-base64!", verify.ReasonMalformedHeader},
		{"v1 hex", body, "webhook", "msg_1", ts, "v1," + strings.Repeat("ab", 32), verify.ReasonMalformedHeader},
		{"equals sign instead of comma", body, "webhook", "msg_1", ts, "v1=" + good[3:], verify.ReasonMalformedHeader},
		{"leading-zero timestamp", body, "webhook", "msg_1", "0" + ts, good, verify.ReasonMalformedHeader},
		{"negative timestamp", body, "webhook", "msg_1", "-" + ts, good, verify.ReasonMalformedHeader},
		{"too old", body, "webhook", "msg_1", fmt.Sprint(now - 301), sign(cur, "msg_1", now-301), verify.ReasonTooOld},
		{"too new", body, "webhook", "msg_1", fmt.Sprint(now + 301), sign(cur, "msg_1", now+301), verify.ReasonTooNew},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			requireReason(t, v.Verify(swHeaders(tt.prefix, tt.id, tt.ts, tt.sig), tt.body), tt.reason)
		})
	}
}

// TestStandardWebhooksHeaderSets checks that the two header sets are never
// mixed, and that StandardWebhooksID names the id the signature covers.
func TestStandardWebhooksHeaderSets(t *testing.T) {
	t.Parallel()
	const now = 1700000000
	const secret = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	body := []byte(`{}`)
	v, err := verify.NewStandardWebhooks(rotation(secret), verify.StandardWebhooksOptions{Now: fixedNow(now)})
	require.NoError(t, err)
	sig, err := verify.SignStandardWebhooks(secret, "msg_svix", time.Unix(now, 0), body)
	require.NoError(t, err)

	// A complete svix set next to an incomplete webhook set is used whole.
	h := swHeaders("svix", "msg_svix", fmt.Sprint(now), sig)
	h.Set(verify.StandardWebhooksIDHeader, "msg_other")
	require.NoError(t, v.Verify(h, body))
	require.Equal(t, "msg_svix", verify.StandardWebhooksID(h))

	// A complete webhook set wins over the svix set, and its id is the key.
	other, err := verify.SignStandardWebhooks(secret, "msg_std", time.Unix(now, 0), body)
	require.NoError(t, err)
	h = swHeaders("svix", "msg_svix", fmt.Sprint(now), sig)
	for k, vs := range swHeaders("webhook", "msg_std", fmt.Sprint(now), other) {
		h[k] = vs
	}
	require.NoError(t, v.Verify(h, body))
	require.Equal(t, "msg_std", verify.StandardWebhooksID(h))

	// Pieces of both sets are not combined into one.
	h = headers(verify.StandardWebhooksIDHeader, "msg_svix", verify.SvixTimestampHeader, fmt.Sprint(now), verify.SvixSignatureHeader, sig)
	requireReason(t, v.Verify(h, body), verify.ReasonMissingHeader)
	require.Empty(t, verify.StandardWebhooksID(h))
}

func TestStandardWebhooksSecrets(t *testing.T) {
	t.Parallel()
	// Unpadded base64, as the Python library accepts.
	unpadded := strings.TrimRight("whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "=")
	_, err := verify.NewStandardWebhooks(rotation(unpadded), verify.StandardWebhooksOptions{})
	require.NoError(t, err)

	for _, bad := range []string{"whsec_", "whsec_!!SECRET!!", "whsec_Zm9vYmFyX"} {
		_, err := verify.NewStandardWebhooks([]verify.Secret{{Label: "current", Value: []byte(bad)}}, verify.StandardWebhooksOptions{})
		require.ErrorContains(t, err, `secret 1 ("current")`, bad)
		if body := bad[len("whsec_"):]; body != "" {
			require.NotContains(t, err.Error(), body, "the error must not echo the secret")
		}
	}
	_, err = verify.SignStandardWebhooks("whsec_!!!!", "msg", time.Now(), nil)
	require.Error(t, err)
}
