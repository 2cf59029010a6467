package verify

import (
	"bytes"
	"fmt"
)

// Secret is one signing secret of a source, with a label such as "current"
// or "previous" that names it in logs and errors. The label is safe to log;
// the value never is.
type Secret struct {
	// Label names the secret. It must not contain secret material.
	Label string
	// Value is the secret as the provider shows it, byte for byte. Each
	// scheme documents how it turns this into an HMAC key.
	Value []byte
}

// String returns the label only, so that a Secret printed by mistake (with
// %v, %s or slog) shows which secret it is and never what it is.
func (s Secret) String() string { return s.Label }

// GoString is String for %#v, which would otherwise print Value.
func (s Secret) GoString() string { return s.Label }

// checkSecrets validates the secrets of one verifier and copies them, so
// that a caller reusing its slices cannot change a running verifier.
// scheme names the verifier in errors.
func checkSecrets(scheme string, secrets []Secret) ([]Secret, error) {
	if len(secrets) == 0 {
		return nil, fmt.Errorf("verify: %s: %w", scheme, errNoSecrets)
	}
	out := make([]Secret, len(secrets))
	for i, s := range secrets {
		if len(s.Value) == 0 {
			// An empty HMAC key is a valid key, and a weak one: anyone can
			// sign with it. It is always a configuration mistake.
			return nil, fmt.Errorf("verify: %s: secret %d (%s) is empty", scheme, i+1, labelOf(s))
		}
		out[i] = Secret{Label: s.Label, Value: bytes.Clone(s.Value)}
	}
	return out, nil
}

func labelOf(s Secret) string {
	if s.Label == "" {
		return "unlabelled"
	}
	return fmt.Sprintf("%q", s.Label)
}

// secretsFromStrings adapts the string secrets of the original constructors.
// The first is the current secret; later ones are older, still accepted
// during a rotation.
func secretsFromStrings(secrets []string) []Secret {
	out := make([]Secret, len(secrets))
	for i, s := range secrets {
		label := "current"
		if i > 0 {
			label = fmt.Sprintf("previous-%d", i)
		}
		out[i] = Secret{Label: label, Value: []byte(s)}
	}
	return out
}
