// Package sources turns configuration into the receiver's sources: who may
// send webhooks, how each one's signature is checked, and where its event
// id and type are.
//
// Sources come from a YAML file named by HOOKLINE_SOURCES or, without one,
// from the environment variables of the original two sources (stripe and
// bank). Secrets are never written in the file: each names the environment
// variable or file that holds it, with a label that is safe to log.
package sources

import (
	"time"

	"go.yaml.in/yaml/v3"
)

// File is the sources file.
type File struct {
	Sources []Config `yaml:"sources"`
}

// Config declares one source.
type Config struct {
	// Name is the path segment (/api/webhooks/<name>) and the inbox key.
	Name string `yaml:"name"`
	// Type is the verifier: stripe, github, shopify, slack, standardwebhooks or hmac.
	Type string `yaml:"type"`
	// Secrets lists the signing secrets; several allow rotation.
	Secrets []SecretRef `yaml:"secrets"`
	// Tolerance is how far a signed timestamp may be from now (stripe,
	// slack, standardwebhooks, and hmac with a timestamp header). Default 5m.
	Tolerance time.Duration `yaml:"tolerance"`
	// Livemode, for stripe, refuses events whose livemode differs: a test
	// event reaching a live endpoint means the wrong secret is deployed.
	Livemode *bool `yaml:"livemode"`
	// ID and EventType override where the idempotency key and the event
	// type are read; each type has a default.
	ID        *Locator `yaml:"id"`
	EventType *Locator `yaml:"event_type"`
	// Object and Time override where the key of the object an event is
	// about, and the provider's event time, are read: what ordered
	// handlers order by. Each type has a default (docs/SOURCES.md); an
	// object read from a header, or a time from a header the scheme does
	// not sign, is warned about.
	Object *Locator `yaml:"object"`
	Time   *Locator `yaml:"time"`
	// MaxBodyBytes overrides MAX_BODY_BYTES for this source.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// FailureStatus is the answer to a bad signature: 400 (default), 401 or 403.
	FailureStatus int `yaml:"failure_status"`
	// ReplayGuard is what, beside the id, keeps a captured delivery sent
	// again under a new id from being a new event: body (a body is stored
	// once), body_and_type (once per event type) or off. The default is
	// body_and_type for shopify, body for other sources that read their id
	// from a header, and off where the signature covers the id.
	ReplayGuard string `yaml:"replay_guard"`
	// EventTypes, if not empty, lists the only event types the source
	// accepts; a verified event of another type gets 400 and is not
	// stored. With a type the scheme does not sign (GitHub, Shopify), it
	// bounds what one captured delivery, sent under other types, can
	// store.
	EventTypes []string `yaml:"event_types"`
	// HMAC configures the generic hmac type.
	HMAC *HMACConfig `yaml:"hmac"`
	// AllowIPs, if not empty, lists the only networks (CIDR, or single
	// addresses) that may send to this source; others get 403. Empty
	// allows every address.
	AllowIPs []string `yaml:"allow_ips"`

	// node is where the source is in the sources file, so that an error
	// can give the line of the field at fault; nil for sources from the
	// environment.
	node *yaml.Node
}

// SecretRef names where one secret is: exactly one of Env and File.
type SecretRef struct {
	// Label identifies the secret in logs, such as current or previous.
	Label string `yaml:"label"`
	// Env is the environment variable that holds the secret.
	Env string `yaml:"env"`
	// File is the path of a file that holds the secret.
	File string `yaml:"file"`
	// value is set only for sources built from the environment.
	value string
}

// Locator is where a field is: a request header or a JSON path in the body.
type Locator struct {
	Header string `yaml:"header"`
	JSON   string `yaml:"json"`
}

// HMACConfig configures the generic HMAC scheme.
type HMACConfig struct {
	// Header carries the signature.
	Header string `yaml:"header"`
	// Prefix precedes the signature in the header, such as "sha256=".
	Prefix string `yaml:"prefix"`
	// Algorithm is sha1, sha256 (default) or sha512.
	Algorithm string `yaml:"algorithm"`
	// Encoding is hex (default) or base64.
	Encoding string `yaml:"encoding"`
	// TimestampHeader, if set, carries a signed Unix timestamp.
	TimestampHeader string `yaml:"timestamp_header"`
	// Template is the signed content, with {timestamp} and {body}.
	Template string `yaml:"template"`
}
