package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestProbeExitsZeroOnlyFor2xx(t *testing.T) {
	t.Parallel()
	status, reason := http.StatusOK, ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/readyz", r.URL.Path)
		w.WriteHeader(status)
		if reason != "" {
			_ = json.NewEncoder(w).Encode(map[string]string{"error": reason})
		}
	}))
	t.Cleanup(srv.Close)
	hookctl := func() (string, error) {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"hookctl", "probe", srv.URL + "/readyz"}, func(string) string { return "" }, &stdout, &stderr)
		return stdout.String(), err
	}

	out, err := hookctl()
	require.NoError(t, err)
	require.Contains(t, out, "200 OK")

	status = http.StatusServiceUnavailable
	_, err = hookctl()
	require.ErrorContains(t, err, "answered 503 Service Unavailable")

	reason = "Database is not migrated: Hookline migration 9 is pending; run `hookctl migrate`"
	_, err = hookctl()
	require.EqualError(t, err, "probe "+srv.URL+"/readyz: answered 503 Service Unavailable: "+reason, "the reason /readyz gives is printed")

	srv.Close()
	_, err = hookctl()
	require.ErrorContains(t, err, "connection refused")
}
