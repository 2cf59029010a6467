package shed_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/pgtest"
	"github.com/hookline/hookline/internal/shed"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestLimiterFollowsTheSettingsLive(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	ctx := context.Background()
	l := shed.NewLimiter()
	admitted := func(source string, n int) int {
		ok := 0
		for range n {
			if l.Allow(source) {
				ok++
			}
		}
		return ok
	}

	require.NoError(t, l.Refresh(ctx, db.Pool))
	require.Equal(t, 100, admitted("stripe", 100), "no limit set: everything passes")

	require.NoError(t, shed.Set(ctx, db.Pool, "stripe", 5, "test"))
	require.NoError(t, l.Refresh(ctx, db.Pool))
	require.Equal(t, 5, admitted("stripe", 100), "a burst of one second's worth, then shed")
	require.Equal(t, 100, admitted("bank", 100), "other sources are not limited")

	require.NoError(t, shed.Set(ctx, db.Pool, "stripe", -1, "test"))
	require.NoError(t, l.Refresh(ctx, db.Pool))
	require.Equal(t, 100, admitted("stripe", 100), "lifting the limit admits everything again")
}
