package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
)

// HMACHeader is the header that carries the bank's signature.
const HMACHeader = "X-Hmac-Signature"

// HMAC verifies the bank scheme: the header holds the hex HMAC-SHA256 of the
// raw body under a shared secret.
type HMAC struct {
	header  string
	secrets [][]byte
}

// NewHMAC returns a verifier that reads the signature from header and accepts
// it under any of secrets. Several secrets let a sender rotate with no
// downtime: add the new secret, switch the sender, then drop the old one.
func NewHMAC(header string, secrets []string) (*HMAC, error) {
	if len(secrets) == 0 {
		return nil, errNoSecrets
	}
	v := &HMAC{header: header}
	for _, s := range secrets {
		v.secrets = append(v.secrets, []byte(s))
	}
	return v, nil
}

// Verify implements Verifier.
func (v *HMAC) Verify(header http.Header, body []byte) error {
	raw := header.Get(v.header)
	if raw == "" {
		return &Error{Reason: ReasonMissingHeader}
	}
	got, err := hex.DecodeString(raw)
	if err != nil || len(got) != sha256.Size {
		return &Error{Reason: ReasonMalformedHeader}
	}
	for _, secret := range v.secrets {
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		// hmac.Equal takes constant time for equal lengths, and the length
		// was checked above, so timing reveals nothing about the MAC.
		if hmac.Equal(mac.Sum(nil), got) {
			return nil
		}
	}
	return &Error{Reason: ReasonNoMatch, SecretsTried: len(v.secrets)}
}

// SignHMAC returns the header value a sender using the bank scheme would
// send for body under secret. It is used by `hookctl send` and by tests.
func SignHMAC(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}
