package verify_test

import (
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/verify"
)

// TestShopifyOfficialVector uses the values of Shopify's own library test
// "returns true for valid request": apiSecretKey "test_secret_key" (from
// lib/__tests__/test-config.ts), rawBody '{"foo": "bar"}', expected hmac
// "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g=". Source:
// https://github.com/Shopify/shopify-app-js/blob/main/packages/apps/shopify-api/lib/webhooks/__tests__/validate.test.ts
// Shopify's documentation publishes no fixed vector.
func TestShopifyOfficialVector(t *testing.T) {
	t.Parallel()
	const (
		secret = "test_secret_key"
		body   = `{"foo": "bar"}`
		want   = "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="
	)
	require.Equal(t, want, verify.SignShopify(secret, []byte(body)))
	v, err := verify.NewShopify(rotation(secret))
	require.NoError(t, err)
	require.NoError(t, v.Verify(headers(verify.ShopifyHMACHeader, want), []byte(body)))
	// The library's "returns false on invalid HMAC" case sends "fake".
	requireReason(t, v.Verify(headers(verify.ShopifyHMACHeader, "fake"), []byte(body)), verify.ReasonMalformedHeader)

	// A second spelling of the same bytes, with padding bits set, which a
	// lenient decoder accepts and Shopify never sends.
	const alias = "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7h="
	a, err := base64.StdEncoding.DecodeString(alias)
	require.NoError(t, err)
	w, err := base64.StdEncoding.DecodeString(want)
	require.NoError(t, err)
	require.Equal(t, w, a)
	requireReason(t, v.Verify(headers(verify.ShopifyHMACHeader, alias), []byte(body)), verify.ReasonMalformedHeader)
}

func TestShopify(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":820982911946154508,"email":"jon@example.com"}`)
	v, err := verify.NewShopify(rotation("new", "old"))
	require.NoError(t, err)
	good := verify.SignShopify("new", body)

	tests := []struct {
		name   string
		body   []byte
		header string
		reason verify.Reason
	}{
		{"current secret", body, good, ""},
		{"previous secret during rotation", body, verify.SignShopify("old", body), ""},
		{"tampered body", append(body, ' '), good, verify.ReasonNoMatch},
		{"wrong secret", body, verify.SignShopify("other", body), verify.ReasonNoMatch},
		{"missing header", body, "", verify.ReasonMissingHeader},
		{"hex instead of base64", body, verify.SignHMAC("new", body), verify.ReasonMalformedHeader},
		{"unpadded base64", body, good[:len(good)-1], verify.ReasonMalformedHeader},
		{"url-safe alphabet", body, "-_" + good[2:], verify.ReasonMalformedHeader},
		{"with a prefix", body, "sha256=" + good, verify.ReasonMalformedHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			requireReason(t, v.Verify(headers(verify.ShopifyHMACHeader, tt.header), tt.body), tt.reason)
		})
	}
}
