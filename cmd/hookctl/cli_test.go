package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseDurationAcceptsDays(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{
		"30d": 30 * 24 * time.Hour, "1d12h": 36 * time.Hour, "90m": 90 * time.Minute, "0d": 0,
	} {
		got, err := parseDuration(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "d", "7days", "-1h", "1d-2h", "abc"} {
		_, err := parseDuration(in)
		require.Error(t, err, in)
	}
}
