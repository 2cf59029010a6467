package riverdb_test

import (
	"slices"
	"testing"

	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/riverdb"
)

// A state River adds must be placed: a job in it either still runs on its
// own, and belongs to the backlog, or does not.
func TestEveryRiverStateIsLiveOrFinal(t *testing.T) {
	t.Parallel()
	grouped := slices.Concat(riverdb.LiveStates(), riverdb.FinalStates())
	require.ElementsMatch(t, rivertype.JobStates(), grouped)
	for _, s := range riverdb.DeadStates() {
		require.Contains(t, riverdb.FinalStates(), s)
	}
}

func TestNamesKeepsTheOrder(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"available", "running", "retryable", "scheduled", "pending"}, riverdb.Names(riverdb.LiveStates()))
	require.Empty(t, riverdb.Names(nil))
}
