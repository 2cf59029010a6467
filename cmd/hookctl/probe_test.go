package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestProbeExitsZeroOnlyFor2xx(t *testing.T) {
	t.Parallel()
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/readyz", r.URL.Path)
		w.WriteHeader(status)
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

	srv.Close()
	_, err = hookctl()
	require.ErrorContains(t, err, "connection refused")
}
