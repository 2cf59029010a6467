package verify

// GitHub's webhook headers.
// Spec: https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
// and https://docs.github.com/en/webhooks/webhook-events-and-payloads#delivery-headers
const (
	// GitHubSignatureHeader carries "sha256=" and the hex HMAC-SHA256 of
	// the body under the webhook's secret.
	GitHubSignatureHeader = "X-Hub-Signature-256"
	// GitHubDeliveryHeader carries a GUID unique to the delivery and kept
	// on redelivery: the idempotency key.
	GitHubDeliveryHeader = "X-GitHub-Delivery"
	// GitHubEventHeader carries the event type, such as "push".
	GitHubEventHeader = "X-GitHub-Event"
)

// githubPrefix is the fixed algorithm tag of GitHubSignatureHeader.
const githubPrefix = "sha256="

// NewGitHub returns a verifier of GitHub's webhook signatures, as
// specified at
// https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries:
// X-Hub-Signature-256 is "sha256=" followed by the hex HMAC-SHA256 of the
// raw body, keyed with the webhook secret's bytes. The legacy SHA-1
// X-Hub-Signature header is deliberately not accepted: GitHub sends both,
// and SHA-256 is the one its documentation asks receivers to check.
func NewGitHub(secrets []Secret) (*HMAC, error) {
	return newHMAC("github", secrets, HMACOptions{Header: GitHubSignatureHeader, Prefix: githubPrefix})
}

// SignGitHub returns the X-Hub-Signature-256 value GitHub would send for
// body under secret.
func SignGitHub(secret string, body []byte) string {
	return githubPrefix + SignHMAC(secret, body)
}
