package verify_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/verify"
)

// Slack's worked example from
// https://docs.slack.dev/authentication/verifying-requests-from-slack, as
// pinned by Slack's own SDK test suite:
// https://github.com/slackapi/python-slack-sdk/blob/main/tests/slack_sdk/signature/test_signature_verifier.py
const (
	slackDocSecret    = "8f742231b10e8888abcd99yyyzzz85a5"
	slackDocTimestamp = 1531420618
	slackDocBody      = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	slackDocSignature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
)

func TestSlackOfficialVector(t *testing.T) {
	t.Parallel()
	sig, ts := verify.SignSlack(slackDocSecret, time.Unix(slackDocTimestamp, 0), []byte(slackDocBody))
	require.Equal(t, slackDocSignature, sig)
	require.Equal(t, "1531420618", ts)

	// The SDK's MockClock returns the example's own timestamp.
	v, err := verify.NewSlack(rotation(slackDocSecret), verify.SlackOptions{Now: fixedNow(slackDocTimestamp)})
	require.NoError(t, err)
	h := headers(verify.SlackSignatureHeader, slackDocSignature, verify.SlackTimestampHeader, "1531420618")
	require.NoError(t, v.Verify(h, []byte(slackDocBody)))
	// SDK negative cases: a modified body, and the real clock (expired).
	requireReason(t, v.Verify(h, []byte(slackDocBody+"------")), verify.ReasonNoMatch)
	wallClock, err := verify.NewSlack(rotation(slackDocSecret), verify.SlackOptions{})
	require.NoError(t, err)
	requireReason(t, wallClock.Verify(h, []byte(slackDocBody)), verify.ReasonTooOld)
}

func TestSlack(t *testing.T) {
	t.Parallel()
	const now = 1700000000
	body := []byte(`{"type":"event_callback","event_id":"Ev1"}`)
	v, err := verify.NewSlack(rotation("new", "old"), verify.SlackOptions{Now: fixedNow(now)})
	require.NoError(t, err)
	sign := func(secret string, unix int64) (string, string) {
		return verify.SignSlack(secret, time.Unix(unix, 0), body)
	}
	good, goodTS := sign("new", now)

	tests := []struct {
		name    string
		body    []byte
		sig, ts string
		reason  verify.Reason
	}{
		{"current secret", body, good, goodTS, ""},
		{"previous secret during rotation", body, first(sign("old", now)), goodTS, ""},
		{"tampered body", append(body, ' '), good, goodTS, verify.ReasonNoMatch},
		{"wrong secret", body, first(sign("other", now)), goodTS, verify.ReasonNoMatch},
		{"timestamp changed", body, good, fmt.Sprint(now + 1), verify.ReasonNoMatch},
		{"missing signature", body, "", goodTS, verify.ReasonMissingHeader},
		{"missing timestamp", body, good, "", verify.ReasonMissingHeader},
		{"no v0= prefix", body, good[3:], goodTS, verify.ReasonMalformedHeader},
		{"unknown version", body, "v1=" + good[3:], goodTS, verify.ReasonMalformedHeader},
		{"non-numeric timestamp", body, good, "hello", verify.ReasonMalformedHeader},
		{"fractional timestamp", body, good, goodTS + ".5", verify.ReasonMalformedHeader},
		{"too old", body, first(sign("new", now-301)), fmt.Sprint(now - 301), verify.ReasonTooOld},
		{"too new", body, first(sign("new", now+301)), fmt.Sprint(now + 301), verify.ReasonTooNew},
		{"edge of the window", body, first(sign("new", now-300)), fmt.Sprint(now - 300), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := headers(verify.SlackSignatureHeader, tt.sig, verify.SlackTimestampHeader, tt.ts)
			requireReason(t, v.Verify(h, tt.body), tt.reason)
		})
	}
}

func first(a, _ string) string { return a }
