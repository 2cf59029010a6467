package dbpool_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/dbpool"
)

func TestNewSizesThePool(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		url      string
		maxConns int
		want     int32
	}{
		{"automatic size when nothing is set", "postgres://u@127.0.0.1:1/db", 0, 55},
		{"pool_max_conns in the URL wins over automatic", "postgres://u@127.0.0.1:1/db?pool_max_conns=7", 0, 7},
		{"DATABASE_MAX_CONNS wins over the URL", "postgres://u@127.0.0.1:1/db?pool_max_conns=7", 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool, err := dbpool.New(context.Background(), tt.url, tt.maxConns, 55, "hookline-test")
			require.NoError(t, err)
			defer pool.Close()
			require.Equal(t, tt.want, pool.Config().MaxConns)
		})
	}
}

func TestNewNeverEchoesTheURL(t *testing.T) {
	t.Parallel()
	_, err := dbpool.New(context.Background(), "postgres://u:s3cret@host:notaport/db", 0, 1, "")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cret")
}

func TestNewNamesConnectionsUnlessTheURLDoes(t *testing.T) {
	t.Parallel()
	pool, err := dbpool.New(context.Background(), "postgres://u@127.0.0.1:1/db", 0, 1, "hookline-worker")
	require.NoError(t, err)
	defer pool.Close()
	require.Equal(t, "hookline-worker", pool.Config().ConnConfig.RuntimeParams["application_name"])

	pool, err = dbpool.New(context.Background(), "postgres://u@127.0.0.1:1/db?application_name=mine", 0, 1, "hookline-worker")
	require.NoError(t, err)
	defer pool.Close()
	require.Equal(t, "mine", pool.Config().ConnConfig.RuntimeParams["application_name"])
}
