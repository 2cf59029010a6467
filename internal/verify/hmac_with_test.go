package verify_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/verify"
)

// The bank scheme is the generic scheme with its defaults, and agrees with
// SignHMAC and the openssl-computed vector of TestHMACKnownVector.
func TestHMACWithBankDefaults(t *testing.T) {
	t.Parallel()
	const want = "16df3fb60e415efc019e16a1df3e46f376866feda971972b75fa6664e2e7b172"
	body := []byte(`{"id":"tr_1"}`)
	opts := verify.HMACOptions{Header: verify.HMACHeader}
	sig, ts, err := verify.SignHMACWith("secret", opts, time.Time{}, body)
	require.NoError(t, err)
	require.Equal(t, want, sig)
	require.Empty(t, ts)
	v, err := verify.NewHMACWith(rotation("secret"), opts)
	require.NoError(t, err)
	require.NoError(t, v.Verify(headers(verify.HMACHeader, want), body))
	require.NoError(t, v.Verify(headers(verify.HMACHeader, strings.ToUpper(want)), body), "hex is compared as bytes")
}

// TestHMACWithSchemes checks each algorithm, encoding, prefix and template
// against HMACs computed here with the standard library, not with the
// package's own signer.
func TestHMACWithSchemes(t *testing.T) {
	t.Parallel()
	const now = 1700000000
	body := []byte(`{"id":"x"}`)
	mac := func(h func() hash.Hash, key, msg string) []byte {
		m := hmac.New(h, []byte(key))
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	tests := []struct {
		name   string
		opts   verify.HMACOptions
		header string
		ts     string
	}{
		{"sha1 hex with prefix", verify.HMACOptions{Header: "X-Sig", Prefix: "sha1=", Algorithm: "sha1"},
			"sha1=" + hex.EncodeToString(mac(sha1.New, "k", string(body))), ""},
		{"sha512 base64", verify.HMACOptions{Header: "X-Sig", Algorithm: "sha512", Encoding: "base64"},
			base64.StdEncoding.EncodeToString(mac(sha512.New, "k", string(body))), ""},
		{"timestamp with default template", verify.HMACOptions{Header: "X-Sig", TimestampHeader: "X-Ts"},
			hex.EncodeToString(mac(sha256.New, "k", fmt.Sprint(now)+"."+string(body))), fmt.Sprint(now)},
		{"custom template", verify.HMACOptions{Header: "X-Sig", TimestampHeader: "X-Ts", Template: "v0:{timestamp}:{body}", Prefix: "v0="},
			"v0=" + hex.EncodeToString(mac(sha256.New, "k", "v0:"+fmt.Sprint(now)+":"+string(body))), fmt.Sprint(now)},
		{"body before timestamp", verify.HMACOptions{Header: "X-Sig", TimestampHeader: "X-Ts", Template: "{body}|{timestamp}"},
			hex.EncodeToString(mac(sha256.New, "k", string(body)+"|"+fmt.Sprint(now))), fmt.Sprint(now)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.opts.Now = fixedNow(now)
			v, err := verify.NewHMACWith(rotation("other", "k"), tt.opts)
			require.NoError(t, err)
			h := headers("X-Sig", tt.header, "X-Ts", tt.ts)
			require.NoError(t, v.Verify(h, body))
			sig, ts, err := verify.SignHMACWith("k", tt.opts, time.Unix(now, 0), body)
			require.NoError(t, err)
			require.Equal(t, tt.header, sig)
			require.Equal(t, tt.ts, ts)
			requireReason(t, v.Verify(h, append(body, ' ')), verify.ReasonNoMatch)
		})
	}
}

func TestHMACWithTimestamp(t *testing.T) {
	t.Parallel()
	const now = 1700000000
	body := []byte(`{}`)
	opts := verify.HMACOptions{Header: "X-Sig", TimestampHeader: "X-Ts", Tolerance: time.Minute, Now: fixedNow(now)}
	v, err := verify.NewHMACWith(rotation("k"), opts)
	require.NoError(t, err)
	at := func(unix int64) (string, string) {
		sig, ts, err := verify.SignHMACWith("k", opts, time.Unix(unix, 0), body)
		require.NoError(t, err)
		return sig, ts
	}
	sig, ts := at(now)
	requireReason(t, v.Verify(headers("X-Sig", sig, "X-Ts", ts), body), "")
	requireReason(t, v.Verify(headers("X-Sig", sig), body), verify.ReasonMissingHeader)
	requireReason(t, v.Verify(headers("X-Sig", sig, "X-Ts", "1e9"), body), verify.ReasonMalformedHeader)
	requireReason(t, v.Verify(headers("X-Sig", sig, "X-Ts", fmt.Sprint(now+1)), body), verify.ReasonNoMatch)
	requireReason(t, v.Verify(headers("X-Ts", ts), body), verify.ReasonMissingHeader)
	sig, ts = at(now - 61)
	requireReason(t, v.Verify(headers("X-Sig", sig, "X-Ts", ts), body), verify.ReasonTooOld)
	sig, ts = at(now + 61)
	requireReason(t, v.Verify(headers("X-Sig", sig, "X-Ts", ts), body), verify.ReasonTooNew)
}

func TestHMACWithRejectsBadOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts verify.HMACOptions
		want string
	}{
		{"no header", verify.HMACOptions{}, "Header"},
		{"header with a space", verify.HMACOptions{Header: "X Sig"}, "Header"},
		{"bad timestamp header", verify.HMACOptions{Header: "X-Sig", TimestampHeader: "X:Ts"}, "TimestampHeader"},
		{"unknown algorithm", verify.HMACOptions{Header: "X-Sig", Algorithm: "md5"}, "Algorithm"},
		{"unknown encoding", verify.HMACOptions{Header: "X-Sig", Encoding: "base32"}, "Encoding"},
		{"unknown placeholder", verify.HMACOptions{Header: "X-Sig", Template: "{id}.{body}"}, "unknown placeholder {id}"},
		{"misspelt placeholder", verify.HMACOptions{Header: "X-Sig", Template: "{Body}"}, "unknown placeholder"},
		{"no body", verify.HMACOptions{Header: "X-Sig", Template: "static"}, "{body} must appear exactly once"},
		{"body twice", verify.HMACOptions{Header: "X-Sig", Template: "{body}{body}"}, "{body} must appear exactly once"},
		{"unmatched brace", verify.HMACOptions{Header: "X-Sig", Template: "{body"}, "unmatched '{'"},
		{"stray closing brace", verify.HMACOptions{Header: "X-Sig", Template: "}{body}"}, "unmatched '}'"},
		{"timestamp without its header", verify.HMACOptions{Header: "X-Sig", Template: "{timestamp}.{body}"}, "needs TimestampHeader"},
		{"timestamp header not signed", verify.HMACOptions{Header: "X-Sig", TimestampHeader: "X-Ts", Template: "{body}"}, "{timestamp} must appear exactly once"},
		{"tolerance without timestamp", verify.HMACOptions{Header: "X-Sig", Tolerance: time.Minute}, "Tolerance needs TimestampHeader"},
		{"negative tolerance", verify.HMACOptions{Header: "X-Sig", TimestampHeader: "X-Ts", Tolerance: -time.Second}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := verify.NewHMACWith(rotation("k"), tt.opts)
			require.ErrorContains(t, err, tt.want)
			_, _, err = verify.SignHMACWith("k", tt.opts, time.Now(), nil)
			require.ErrorContains(t, err, tt.want)
		})
	}
}
