package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
)

// Shopify's webhook headers.
// Spec: https://shopify.dev/docs/apps/build/webhooks/subscribe/https
const (
	// ShopifyHMACHeader carries the base64 HMAC-SHA256 of the body.
	ShopifyHMACHeader = "X-Shopify-Hmac-Sha256"
	// ShopifyWebhookIDHeader carries an id unique to the webhook and kept
	// on retries: the idempotency key.
	ShopifyWebhookIDHeader = "X-Shopify-Webhook-Id"
	// ShopifyTopicHeader carries the event type, such as "orders/create".
	ShopifyTopicHeader = "X-Shopify-Topic"
)

// NewShopify returns a verifier of Shopify's webhook signatures, as
// specified at
// https://shopify.dev/docs/apps/build/webhooks/subscribe/https:
// X-Shopify-Hmac-Sha256 is the standard base64 HMAC-SHA256 of the raw body,
// keyed with the app's client secret, with no prefix. Shopify signs no
// timestamp, so there is no replay window; the webhook id is the defence
// against replays.
func NewShopify(secrets []Secret) (*HMAC, error) {
	return newHMAC("shopify", secrets, HMACOptions{Header: ShopifyHMACHeader, Encoding: "base64"})
}

// SignShopify returns the X-Shopify-Hmac-Sha256 value Shopify would send for
// body under secret.
func SignShopify(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
