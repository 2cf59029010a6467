package hostile_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/clustertest"
	"github.com/hookline/hookline/internal/ledgertest"
	"github.com/hookline/hookline/internal/verify"
)

// TestIPAllowlistOnTheRealBinary runs two receivers on one database with a
// bank source that only 192.0.2.0/24 may use. The test's own address,
// 127.0.0.1, is refused with 403 by both, and a forged X-Forwarded-For does
// not help unless the peer is a trusted proxy (RECEIVER_TRUSTED_PROXIES).
func TestIPAllowlistOnTheRealBinary(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t)
	c.Forbid(ledgertest.Canary)
	path := filepath.Join(t.TempDir(), "sources.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
sources:
  - name: bank
    type: hmac
    allow_ips: ["192.0.2.0/24", "2001:db8::/32"]
    secrets: [{label: current, env: BANK_WEBHOOK_SECRET}]
`), 0o600))
	direct := c.StartReceiver(t, "HOOKLINE_SOURCES="+path)
	proxied := c.StartReceiver(t, "HOOKLINE_SOURCES="+path, "RECEIVER_TRUSTED_PROXIES=127.0.0.1/32")

	send := func(base, xff string) (int, string) {
		t.Helper()
		body := bankBody(nextID("ip"))
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, base+bankPath, bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set(verify.HMACHeader, verify.SignHMAC(clustertest.BankSecret, body))
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	const denied = `{"error":"This address may not send events to this source"}`

	tests := []struct {
		name   string
		base   string
		xff    string
		status int
	}{
		{"the TCP peer 127.0.0.1 is outside the allowlist", direct.URL, "", 403},
		{"a forged X-Forwarded-For from an untrusted peer is ignored", direct.URL, "192.0.2.7", 403},
		{"behind a trusted proxy, with no X-Forwarded-For, the proxy is the client", proxied.URL, "", 403},
		{"behind a trusted proxy, a client outside the allowlist is refused", proxied.URL, "198.51.100.1", 403},
		{"behind a trusted proxy, the nearest untrusted hop decides", proxied.URL, "192.0.2.7, 198.51.100.1", 403},
		{"behind a trusted proxy, an allowed client is accepted", proxied.URL, "192.0.2.7", 200},
		{"behind a trusted proxy, an allowed IPv6 client is accepted", proxied.URL, "2001:db8::7", 200},
	}
	accepted := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := send(tt.base, tt.xff)
			require.Equal(t, tt.status, status, body)
			if status == http.StatusForbidden {
				require.JSONEq(t, denied, body)
			} else {
				accepted++
			}
			events, jobs := stored(t, c)
			require.Equal(t, accepted, events)
			require.Equal(t, accepted, jobs)
		})
	}
	require.Contains(t, direct.Out.String(), `"outcome":"ip_denied"`)
	require.Contains(t, direct.Out.String(), `"client_ip":"127.0.0.1"`)
	require.Contains(t, proxied.Out.String(), `"client_ip":"198.51.100.1"`)
}
