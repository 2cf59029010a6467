package verify

import (
	"time"
)

// Slack's request-signing headers.
// Spec: https://docs.slack.dev/authentication/verifying-requests-from-slack
const (
	// SlackSignatureHeader carries "v0=" and the hex HMAC-SHA256 of
	// "v0:<timestamp>:<body>".
	SlackSignatureHeader = "X-Slack-Signature"
	// SlackTimestampHeader carries the signing time in Unix seconds.
	SlackTimestampHeader = "X-Slack-Request-Timestamp"
)

// SlackOptions configures NewSlack.
type SlackOptions struct {
	// Tolerance is the replay window, in both directions. Zero means
	// DefaultTolerance, the five minutes Slack's documentation uses.
	Tolerance time.Duration
	// Now is the clock, for tests. Nil means time.Now.
	Now func() time.Time
}

// slackOptions is Slack's scheme as a generic HMAC scheme.
func slackOptions(o SlackOptions) HMACOptions {
	return HMACOptions{
		Header:          SlackSignatureHeader,
		Prefix:          "v0=",
		TimestampHeader: SlackTimestampHeader,
		Template:        "v0:{timestamp}:{body}",
		Tolerance:       o.Tolerance,
		Now:             o.Now,
	}
}

// NewSlack returns a verifier of Slack's request signatures, as specified
// at https://docs.slack.dev/authentication/verifying-requests-from-slack:
// X-Slack-Signature is "v0=" followed by the hex HMAC-SHA256 of
// "v0:" + X-Slack-Request-Timestamp + ":" + raw body, keyed with the app's
// signing secret, and the timestamp must be within the window of the
// receiver's clock in either direction.
func NewSlack(secrets []Secret, opts SlackOptions) (*HMAC, error) {
	return newHMAC("slack", secrets, slackOptions(opts))
}

// SignSlack returns the X-Slack-Signature and X-Slack-Request-Timestamp
// values Slack would send for body under secret at time ts.
func SignSlack(secret string, ts time.Time, body []byte) (sigHeader, tsHeader string) {
	// The options are constant and valid, so SignHMACWith cannot fail.
	sig, stamp, _ := SignHMACWith(secret, slackOptions(SlackOptions{}), ts, body)
	return sig, stamp
}
