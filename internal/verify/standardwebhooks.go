package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The Standard Webhooks headers, and the svix- names Svix sends unless its
// customer has white-labelled them to the standard ones.
// Spec: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
const (
	// StandardWebhooksIDHeader carries the message id, kept on retries:
	// the idempotency key. Use StandardWebhooksID to read it.
	StandardWebhooksIDHeader = "webhook-id"
	// StandardWebhooksTimestampHeader carries the signing time in Unix
	// seconds.
	StandardWebhooksTimestampHeader = "webhook-timestamp"
	// StandardWebhooksSignatureHeader carries space-separated signatures,
	// each "v1," and a base64 HMAC-SHA256.
	StandardWebhooksSignatureHeader = "webhook-signature"
	// SvixIDHeader is StandardWebhooksIDHeader as Svix names it.
	SvixIDHeader = "svix-id"
	// SvixTimestampHeader is StandardWebhooksTimestampHeader as Svix names it.
	SvixTimestampHeader = "svix-timestamp"
	// SvixSignatureHeader is StandardWebhooksSignatureHeader as Svix names it.
	SvixSignatureHeader = "svix-signature"
)

// whsecPrefix marks a serialized Standard Webhooks symmetric secret.
const whsecPrefix = "whsec_"

// StandardWebhooksOptions configures NewStandardWebhooks.
type StandardWebhooksOptions struct {
	// Tolerance is the replay window, in both directions. Zero means
	// DefaultTolerance, the five minutes of the official libraries.
	Tolerance time.Duration
	// Now is the clock, for tests. Nil means time.Now.
	Now func() time.Time
}

// StandardWebhooks verifies the symmetric scheme of the Standard Webhooks
// specification,
// https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md,
// which Svix also sends: each "v1,<base64>" entry of webhook-signature is a
// candidate HMAC-SHA256 of id + "." + timestamp + "." + raw body. Entries of
// other versions (such as the asymmetric v1a) are ignored.
type StandardWebhooks struct {
	keys   []Secret // decoded HMAC keys
	window window
}

// NewStandardWebhooks returns a verifier that accepts a signature under any
// of secrets whose timestamp is within the window. Each secret's Value is
// the secret as the provider shows it: "whsec_" and standard base64, as the
// specification serializes it. Like the official libraries, it also takes
// the base64 without the prefix, and, like the Python library, base64
// without padding. The decoded bytes are the HMAC key.
func NewStandardWebhooks(secrets []Secret, opts StandardWebhooksOptions) (*StandardWebhooks, error) {
	ss, err := checkSecrets("standardwebhooks", secrets)
	if err != nil {
		return nil, err
	}
	for i := range ss {
		if ss[i].Value, err = decodeWhsec(string(ss[i].Value)); err != nil {
			return nil, fmt.Errorf("verify: standardwebhooks: secret %d (%s): %w", i+1, labelOf(ss[i]), err)
		}
	}
	w, err := newWindow("standardwebhooks", opts.Tolerance, DefaultTolerance, opts.Now)
	if err != nil {
		return nil, err
	}
	return &StandardWebhooks{keys: ss, window: w}, nil
}

func decodeWhsec(s string) ([]byte, error) {
	s = strings.TrimPrefix(s, whsecPrefix)
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(s)
	}
	switch {
	case err != nil:
		return nil, errors.New(`not "whsec_" and base64`)
	case len(key) == 0:
		return nil, errors.New("decodes to an empty key")
	}
	return key, nil
}

// standardHeaders returns the id, timestamp and signature of the first
// complete set of headers, the webhook- names before the svix- ones. Sets
// are never mixed: a signature is checked against the id it was sent with.
func standardHeaders(h http.Header) (id, ts, sig string, ok bool) {
	for _, names := range [2][3]string{
		{StandardWebhooksIDHeader, StandardWebhooksTimestampHeader, StandardWebhooksSignatureHeader},
		{SvixIDHeader, SvixTimestampHeader, SvixSignatureHeader},
	} {
		id, ts, sig = h.Get(names[0]), h.Get(names[1]), h.Get(names[2])
		if id != "" && ts != "" && sig != "" {
			return id, ts, sig, true
		}
	}
	return "", "", "", false
}

// StandardWebhooksID returns the message id that Verify checks, from
// webhook-id or svix-id, or "" if neither set of headers is complete. Use it
// rather than reading a header directly, so that the idempotency key is
// always the id the signature covers.
func StandardWebhooksID(h http.Header) string {
	id, _, _, _ := standardHeaders(h)
	return id
}

// StandardWebhooksTimestamp returns the signed timestamp that Verify
// checks, from webhook-timestamp or svix-timestamp, whichever set holds the
// id that StandardWebhooksID returns; "" if neither set is complete.
func StandardWebhooksTimestamp(h http.Header) string {
	_, ts, _, _ := standardHeaders(h)
	return ts
}

// Verify implements Verifier.
func (v *StandardWebhooks) Verify(header http.Header, body []byte) error {
	id, ts, sig, ok := standardHeaders(header)
	if !ok {
		return &Error{Reason: ReasonMissingHeader}
	}
	unix, ok := parseUnix(ts)
	if !ok {
		return &Error{Reason: ReasonMalformedHeader}
	}
	sigs := parseStandardSignatures(sig)
	if len(sigs) == 0 {
		return &Error{Reason: ReasonMalformedHeader}
	}
	if r := v.window.check(unix); r != "" {
		return &Error{Reason: r}
	}
	for _, key := range v.keys {
		want := standardMAC(key.Value, id, ts, body)
		for _, got := range sigs {
			if hmac.Equal(want, got) {
				return nil
			}
		}
	}
	return &Error{Reason: ReasonNoMatch, SecretsTried: len(v.keys)}
}

// parseStandardSignatures returns the well-formed v1 signatures of a
// signature header, at most maxCandidates, in one linear pass. Entries are
// separated by single spaces, as the libraries split them; an entry is a
// version, a comma and a value.
func parseStandardSignatures(s string) [][]byte {
	var sigs [][]byte
	for rest, more := s, true; more && len(sigs) < maxCandidates; {
		var entry string
		entry, rest, more = strings.Cut(rest, " ")
		if val, ok := strings.CutPrefix(entry, "v1,"); ok {
			if sig, ok := decodeBase64(val, sha256.Size); ok {
				sigs = append(sigs, sig)
			}
		}
	}
	return sigs
}

func standardMAC(key []byte, id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	io.WriteString(m, id)
	m.Write([]byte{'.'})
	io.WriteString(m, ts)
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// SignStandardWebhooks returns the webhook-signature value a sender would
// send for message id with body at time ts under secret, which is written
// as for NewStandardWebhooks ("whsec_" and base64).
func SignStandardWebhooks(secret, id string, ts time.Time, body []byte) (string, error) {
	key, err := decodeWhsec(secret)
	if err != nil {
		return "", fmt.Errorf("verify: standardwebhooks: secret: %w", err)
	}
	mac := standardMAC(key, id, strconv.FormatInt(ts.Unix(), 10), body)
	return "v1," + base64.StdEncoding.EncodeToString(mac), nil
}
