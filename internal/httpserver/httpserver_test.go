package httpserver_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/httpserver"
)

func TestNewTakesDefaultsForZeroTimeouts(t *testing.T) {
	t.Parallel()
	srv := httpserver.New(":0", http.NotFoundHandler(), httpserver.Timeouts{ReadHeader: time.Second, Idle: 3 * time.Second})
	require.Equal(t, time.Second, srv.ReadHeaderTimeout)
	require.Equal(t, httpserver.DefaultTimeouts().Read, srv.ReadTimeout)
	require.Equal(t, httpserver.DefaultTimeouts().Write, srv.WriteTimeout)
	require.Equal(t, 3*time.Second, srv.IdleTimeout)
	require.Equal(t, httpserver.MaxHeaderBytes, srv.MaxHeaderBytes)

	def := httpserver.New(":0", http.NotFoundHandler(), httpserver.Timeouts{})
	require.Equal(t, 5*time.Second, def.ReadHeaderTimeout)
	require.Equal(t, 30*time.Second, def.ReadTimeout)
	require.Equal(t, 30*time.Second, def.WriteTimeout)
	require.Equal(t, 120*time.Second, def.IdleTimeout)
}
