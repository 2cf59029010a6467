package hookline

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReceiverConfigBatchFlush: INGEST_BATCH_FLUSH is timer unless set,
// takes free, and refuses anything else by name.
func TestReceiverConfigBatchFlush(t *testing.T) {
	t.Parallel()
	load := func(flush string) (ReceiverConfig, error) {
		vars := map[string]string{"DATABASE_URL": "postgres://x/y", "STRIPE_WEBHOOK_SECRET": "whsec_test", "BANK_WEBHOOK_SECRET": "bank_test"}
		if flush != "" {
			vars["INGEST_BATCH_FLUSH"] = flush
		}
		return LoadReceiverConfig(func(k string) string { return vars[k] })
	}
	cfg, err := load("")
	require.NoError(t, err)
	require.Equal(t, "timer", cfg.BatchFlush)
	cfg, err = load("free")
	require.NoError(t, err)
	require.Equal(t, "free", cfg.BatchFlush)
	_, err = load("sometimes")
	require.ErrorContains(t, err, `INGEST_BATCH_FLUSH="sometimes": want timer or free`)
}
