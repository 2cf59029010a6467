package receiver_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/logtest"
	"github.com/hookline/hookline/internal/receiver"
	"github.com/hookline/hookline/internal/verify"
)

// countingIngester stands in for the database: these tests are about what
// happens before anything is stored.
type countingIngester struct {
	mu  sync.Mutex
	ids []string
}

func (c *countingIngester) Ingest(_ context.Context, ev inbox.NewEvent) (ingest.Outcome, error) {
	if ev.Release != nil {
		defer ev.Release()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids = append(c.ids, ev.EventID)
	return ingest.Accepted, nil
}

func (c *countingIngester) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ids)
}

// readSpy records whether the handler read the body at all.
type readSpy struct {
	r    io.Reader
	read bool
}

func (s *readSpy) Read(p []byte) (int, error) { s.read = true; return s.r.Read(p) }

func guardHandler(t *testing.T, allow []string, trusted []string) (http.Handler, *countingIngester, *logtest.Buffer) {
	t.Helper()
	v, err := verify.NewHMAC(verify.HMACHeader, []string{bankSecret})
	require.NoError(t, err)
	src := receiver.Source{Name: "bank", Verifier: v}
	for _, a := range allow {
		src.AllowIPs = append(src.AllowIPs, netip.MustParsePrefix(a))
	}
	opts := receiver.Options{MaxBodyBytes: maxBody, IngestTimeout: time.Second, RetryAfter: time.Second}
	for _, p := range trusted {
		opts.TrustedProxies = append(opts.TrustedProxies, netip.MustParsePrefix(p))
	}
	ing := &countingIngester{}
	logs := &logtest.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	return receiver.New(logger, []receiver.Source{src}, ing, nil, opts), ing, logs
}

func TestAllowIPsRefusesOtherAddressesWith403BeforeReadingTheBody(t *testing.T) {
	t.Parallel()
	allow := []string{"192.0.2.0/24", "2001:db8::/32"}
	proxy := []string{"10.0.0.0/8"}
	tests := []struct {
		name    string
		trusted []string
		remote  string
		xff     string
		want    int
		loggeIP string
	}{
		{"allowed IPv4 peer", nil, "192.0.2.7:4000", "", 200, ""},
		{"allowed IPv6 peer", nil, "[2001:db8::1]:4000", "", 200, ""},
		{"allowed IPv4 peer written as IPv4-mapped IPv6", nil, "[::ffff:192.0.2.7]:4000", "", 200, ""},
		{"other peer", nil, "198.51.100.1:4000", "", 403, "198.51.100.1"},
		{"loopback peer is not special", nil, "127.0.0.1:4000", "", 403, "127.0.0.1"},
		{"X-Forwarded-For is ignored without trusted proxies", nil, "198.51.100.1:4000", "192.0.2.7", 403, "198.51.100.1"},
		{"X-Forwarded-For from a trusted proxy is believed", proxy, "10.1.2.3:4000", "192.0.2.7", 200, ""},
		{"the nearest untrusted hop decides, not the first", proxy, "10.1.2.3:4000", "192.0.2.7, 198.51.100.1", 403, "198.51.100.1"},
		{"a chain of trusted proxies is walked", proxy, "10.1.2.3:4000", "192.0.2.7, 10.9.9.9", 200, ""},
		{"X-Forwarded-For from an untrusted peer is ignored", proxy, "198.51.100.9:4000", "192.0.2.7", 403, "198.51.100.9"},
		{"private addresses are not trusted unless listed", proxy, "172.16.0.1:4000", "192.0.2.7", 403, "172.16.0.1"},
		{"an unparsable X-Forwarded-For falls back to the proxy", proxy, "10.1.2.3:4000", "not-an-ip", 403, "10.1.2.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, ing, logs := guardHandler(t, allow, tt.trusted)
			body := bankEvent("tr_ip", 1)
			spy := &readSpy{r: bytes.NewReader(body)}
			req := httptest.NewRequest(http.MethodPost, "/api/webhooks/bank", spy)
			req.RemoteAddr = tt.remote
			req.Header.Set(verify.HMACHeader, verify.SignHMAC(bankSecret, body))
			if tt.xff != "" {
				req.Header.Set("X-Forwarded-For", tt.xff)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, tt.want, rec.Code, rec.Body.String())
			if tt.want == http.StatusForbidden {
				require.JSONEq(t, `{"error":"This address may not send events to this source"}`, rec.Body.String())
				require.False(t, spy.read, "the body of a refused address is never read")
				require.Zero(t, ing.count())
				require.Contains(t, logs.String(), `"outcome":"ip_denied"`)
				require.Contains(t, logs.String(), `"client_ip":"`+tt.loggeIP+`"`)
				return
			}
			require.Equal(t, 1, ing.count())
		})
	}
}

func TestSourceWithoutAllowIPsTakesAnyAddressAndIgnoresXForwardedFor(t *testing.T) {
	t.Parallel()
	h, ing, logs := guardHandler(t, nil, nil)
	body := bankEvent("tr_any", 1)
	req := httptest.NewRequest(http.MethodPost, "/api/webhooks/bank", bytes.NewReader(body))
	req.RemoteAddr = "203.0.113.50:1"
	req.Header.Set("X-Forwarded-For", "not-an-ip")
	req.Header.Set(verify.HMACHeader, verify.SignHMAC(bankSecret, body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, 1, ing.count())
	require.NotContains(t, logs.String(), "client_ip")
}

func TestCompressedBodiesAreRefusedWith415BeforeReading(t *testing.T) {
	t.Parallel()
	tests := []struct {
		encoding []string
		want     int
	}{
		{[]string{"gzip"}, 415},
		{[]string{"br"}, 415},
		{[]string{"deflate"}, 415},
		{[]string{"zstd"}, 415},
		{[]string{"GZIP"}, 415},
		{[]string{"identity, gzip"}, 415},
		{[]string{"identity", "gzip"}, 415},
		{[]string{"identity"}, 200},
		{[]string{"Identity"}, 200},
		{nil, 200},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.encoding, "+"), func(t *testing.T) {
			t.Parallel()
			h, ing, logs := guardHandler(t, nil, nil)
			body := bankEvent("tr_enc", 1)
			spy := &readSpy{r: bytes.NewReader(body)}
			req := httptest.NewRequest(http.MethodPost, "/api/webhooks/bank", spy)
			req.Header.Set(verify.HMACHeader, verify.SignHMAC(bankSecret, body))
			for _, e := range tt.encoding {
				req.Header.Add("Content-Encoding", e)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, tt.want, rec.Code, rec.Body.String())
			if tt.want == http.StatusUnsupportedMediaType {
				require.JSONEq(t, `{"error":"Content-Encoding is not supported: send the body uncompressed, as signed"}`, rec.Body.String())
				require.False(t, spy.read)
				require.Zero(t, ing.count())
				require.Contains(t, logs.String(), `"outcome":"unsupported_encoding"`)
			}
		})
	}
}

func TestMethodsOtherThanPostGet405WithAllowHeader(t *testing.T) {
	t.Parallel()
	h, ing, _ := guardHandler(t, nil, nil)
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPatch, http.MethodDelete, "PROPFIND"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(m, "/api/webhooks/bank", strings.NewReader(`{"id":"x"}`)))
		require.Equal(t, http.StatusMethodNotAllowed, rec.Code, m)
		require.Contains(t, rec.Header().Get("Allow"), "POST", m)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodOptions, "/api/webhooks/bank", nil))
	require.Equal(t, http.StatusNoContent, rec.Code, "OPTIONS lists the allowed methods")
	require.Contains(t, rec.Header().Get("Allow"), "POST")
	require.Zero(t, ing.count())
}
