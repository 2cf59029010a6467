package verify_test

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/hookline/hookline/internal/verify"
)

const stripeNow = 1700000000

// stripeSig is the hex v1 signature of body at unix under secret, computed
// by stripe-go, the official library, rather than by the code under test.
func stripeSig(secret string, body []byte, unix int64) string {
	return hex.EncodeToString(webhook.ComputeSignature(time.Unix(unix, 0), body, secret))
}

func TestStripeWith(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":"evt_1","livemode":false,"type":"charge.succeeded"}`)
	v, err := verify.NewStripeWith(rotation("whsec_new", "whsec_old"), verify.StripeOptions{Now: fixedNow(stripeNow)})
	require.NoError(t, err)
	good := stripeSig("whsec_new", body, stripeNow)
	ts := fmt.Sprintf("t=%d", stripeNow)

	tests := []struct {
		name   string
		body   []byte
		header string
		reason verify.Reason
	}{
		{"current secret", body, ts + ",v1=" + good, ""},
		{"previous secret during rotation", body, ts + ",v1=" + stripeSig("whsec_old", body, stripeNow), ""},
		{"several v1, the last matches", body, ts + ",v1=" + stripeSig("x", body, stripeNow) + ",v1=" + good, ""},
		{"v0 and unknown schemes ignored", body, ts + ",v0=" + good + ",v9=zz,v1=" + good, ""},
		{"signature in upper-case hex", body, ts + ",v1=" + strings.ToUpper(good), ""},
		{"spaces after commas, as stripe-ruby allows", body, ts + ", v1=" + good, ""},
		{"element without '=' ignored", body, ts + ",junk,v1=" + good, ""},
		{"value with '=' ignored", body, ts + ",v0=YWJj=,v1=" + good, ""},
		{"unreadable v1 ignored when another is good", body, ts + ",v1=bad_signature,v1=" + good, ""},
		{"at the edge of the window (old)", body, "t=" + fmt.Sprint(stripeNow-300) + ",v1=" + stripeSig("whsec_new", body, stripeNow-300), ""},
		{"at the edge of the window (new)", body, "t=" + fmt.Sprint(stripeNow+300) + ",v1=" + stripeSig("whsec_new", body, stripeNow+300), ""},
		{"tampered body", append([]byte(" "), body...), ts + ",v1=" + good, verify.ReasonNoMatch},
		{"wrong secret", body, ts + ",v1=" + stripeSig("whsec_other", body, stripeNow), verify.ReasonNoMatch},
		{"signature for another timestamp", body, "t=" + fmt.Sprint(stripeNow+1) + ",v1=" + good, verify.ReasonNoMatch},
		{"only v0", body, ts + ",v0=" + good, verify.ReasonMalformedHeader},
		{"missing header", body, "", verify.ReasonMissingHeader},
		{"no t", body, "v1=" + good, verify.ReasonMalformedHeader},
		{"non-numeric t", body, "t=abc,v1=" + good, verify.ReasonMalformedHeader},
		{"signed t", body, "t=+" + fmt.Sprint(stripeNow) + ",v1=" + good, verify.ReasonMalformedHeader},
		{"two t", body, ts + "," + ts + ",v1=" + good, verify.ReasonMalformedHeader},
		{"no v1", body, ts, verify.ReasonMalformedHeader},
		{"only unreadable v1", body, ts + ",v1=bad_signature", verify.ReasonMalformedHeader},
		{"truncated v1", body, ts + ",v1=" + good[:62], verify.ReasonMalformedHeader},
		{"garbage", body, "garbage", verify.ReasonMalformedHeader},
		{"too old", body, "t=" + fmt.Sprint(stripeNow-301) + ",v1=" + stripeSig("whsec_new", body, stripeNow-301), verify.ReasonTooOld},
		{"too new", body, "t=" + fmt.Sprint(stripeNow+301) + ",v1=" + stripeSig("whsec_new", body, stripeNow+301), verify.ReasonTooNew},
		{"absurdly far in the future", body, "t=999999999999999999,v1=" + good, verify.ReasonTooNew},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			requireReason(t, v.Verify(headers(verify.StripeHeader, tt.header), tt.body), tt.reason)
		})
	}
}

// TestStripeAgreesWithStripeGo checks headers stripe-go's own generator
// produces, for several secrets and bodies, so the scheme is pinned to the
// official library. Stripe publishes no fixed test vector.
func TestStripeAgreesWithStripeGo(t *testing.T) {
	t.Parallel()
	for _, secret := range []string{"whsec_test_secret", "whsec_x", "s"} {
		for _, body := range []string{"", "{}", `{"id":"evt_test_webhook","object":"event"}`, "\x00\xff"} {
			v, err := verify.NewStripeWith(rotation(secret), verify.StripeOptions{Now: fixedNow(stripeNow)})
			require.NoError(t, err)
			p := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{
				Payload: []byte(body), Secret: secret, Timestamp: time.Unix(stripeNow, 0),
			})
			require.NoError(t, v.Verify(headers(verify.StripeHeader, p.Header), []byte(body)))
			require.Equal(t, p.Header, verify.SignStripe(secret, []byte(body), time.Unix(stripeNow, 0)))
			require.NoError(t, webhook.ValidatePayloadIgnoringTolerance([]byte(body), p.Header, secret))
		}
	}
}

func TestStripeLivemode(t *testing.T) {
	t.Parallel()
	live, test := true, false
	sign := func(body string) string {
		return fmt.Sprintf("t=%d,v1=%s", stripeNow, stripeSig("whsec", []byte(body), stripeNow))
	}
	tests := []struct {
		name     string
		livemode *bool
		body     string
		reason   verify.Reason
	}{
		{"live endpoint, live event", &live, `{"id":"evt_1","livemode":true}`, ""},
		{"live endpoint, live event, spaced JSON", &live, `{ "id" : "evt_1", "livemode" : true }`, ""},
		{"test endpoint, test event", &test, `{"livemode":false}`, ""},
		{"unset accepts either", nil, `{"livemode":true}`, ""},
		{"unset accepts non-JSON", nil, `not json`, ""},
		{"live endpoint, test event", &live, `{"livemode":false}`, verify.ReasonLivemodeMismatch},
		{"test endpoint, live event", &test, `{"livemode":true}`, verify.ReasonLivemodeMismatch},
		{"absent", &live, `{"id":"evt_1"}`, verify.ReasonLivemodeMismatch},
		{"null", &test, `{"livemode":null}`, verify.ReasonLivemodeMismatch},
		{"string", &live, `{"livemode":"true"}`, verify.ReasonLivemodeMismatch},
		{"key in another case", &live, `{"LiveMode":true}`, verify.ReasonLivemodeMismatch},
		{"nested only", &live, `{"data":{"livemode":true}}`, verify.ReasonLivemodeMismatch},
		{"not JSON", &live, `livemode=true`, verify.ReasonLivemodeMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := verify.NewStripeWith(rotation("whsec"), verify.StripeOptions{Now: fixedNow(stripeNow), Livemode: tt.livemode})
			require.NoError(t, err)
			err = v.Verify(headers(verify.StripeHeader, sign(tt.body)), []byte(tt.body))
			requireReason(t, err, tt.reason)
		})
	}

	// The check comes after the signature: a forged body gets no_match,
	// whatever its livemode.
	v, err := verify.NewStripeWith(rotation("whsec"), verify.StripeOptions{Now: fixedNow(stripeNow), Livemode: &live})
	require.NoError(t, err)
	requireReason(t, v.Verify(headers(verify.StripeHeader, sign(`{"livemode":true}`)), []byte(`{"livemode":false}`)), verify.ReasonNoMatch)
}

func TestStripeReportsSecretsTried(t *testing.T) {
	t.Parallel()
	body := []byte(`{"livemode":true}`)
	test := false
	v, err := verify.NewStripeWith(rotation("a", "b", "c"), verify.StripeOptions{Now: fixedNow(stripeNow), Livemode: &test})
	require.NoError(t, err)
	h := headers(verify.StripeHeader, fmt.Sprintf("t=%d,v1=%s", stripeNow, stripeSig("zzz", body, stripeNow)))
	requireSecretsTried(t, v.Verify(h, body), verify.ReasonNoMatch, 3)
	h = headers(verify.StripeHeader, fmt.Sprintf("t=%d,v1=%s", stripeNow, stripeSig("b", body, stripeNow)))
	requireSecretsTried(t, v.Verify(h, body), verify.ReasonLivemodeMismatch, 2)
	h = headers(verify.StripeHeader, fmt.Sprintf("t=%d,v1=%s", stripeNow-3600, stripeSig("a", body, stripeNow-3600)))
	requireSecretsTried(t, v.Verify(h, body), verify.ReasonTooOld, 0)
}

func requireSecretsTried(t *testing.T, err error, reason verify.Reason, tried int) {
	t.Helper()
	var ve *verify.Error
	require.ErrorAs(t, err, &ve)
	require.Equal(t, reason, ve.Reason)
	require.Equal(t, tried, ve.SecretsTried)
}
