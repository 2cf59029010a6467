package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/hookline/hookline/internal/ops"
)

// stripeRetryWindow is how long Stripe keeps redelivering an event.
const stripeRetryWindow = 3 * 24 * time.Hour

func newPruneCmd(getenv func(string) string) *cobra.Command {
	var asJSON bool
	opts := ops.PruneOpts{KeepKeysFor: ops.DefaultKeepKeysFor}
	cmd := &cobra.Command{
		Use:   "prune --older-than D [--keep-keys-for D2] [--dry-run]",
		Short: "Delete old payloads, keeping idempotency keys longer",
		Long: `Apply the inbox's retention in two steps:

  1. Delete the events received and processed more than --keep-keys-for ago
     (default 30d), idempotency key and all.
  2. Empty the payload and headers of the events processed more than
     --older-than ago, and mark them pruned. Their (source, event_id) key
     stays, so a late redelivery of an old event is still a duplicate.

Unprocessed events are never touched, nor events with a job still waiting
to run. A pruned event can no longer be replayed.

The invariant: --keep-keys-for must exceed every provider's retry window,
and --older-than. Once a key is deleted, a redelivery of that event is new
to Hookline and its effect is applied again. Stripe retries for up to 3
days; other providers publish their own windows. prune refuses
--keep-keys-for <= --older-than, and warns below 3 days.

Durations take h, m, s and d (days): 7d, 36h, 1d12h. Rows change in batches
of 1000, each in its own transaction, so prune can run while the pipeline
runs. Emptied and deleted rows are dead tuples until autovacuum reclaims
them; after a first run over a large backlog, "hookctl doctor" may ask for
a VACUUM. The SQL is internal/ops.Prune. Reads DATABASE_URL.`,
		Example: `  hookctl prune --older-than 7d --dry-run
  hookctl prune --older-than 7d --keep-keys-for 30d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("older-than") {
				return errors.New("--older-than is required: prune payloads processed longer ago than this, e.g. 7d")
			}
			if err := opts.Validate(); err != nil {
				return err
			}
			if opts.KeepKeysFor < stripeRetryWindow {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: keys kept for %s, less than Stripe's 3-day retry window: a late redelivery of a deleted event would be applied again\n", durationValue{&opts.KeepKeysFor})
			}
			pool, err := connect(cmd, getenv)
			if err != nil {
				return err
			}
			defer pool.Close()
			res, err := ops.Prune(cmd.Context(), pool, opts)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, res)
			}
			verb, deleted, pruned := "", "deleted", "emptied"
			if res.DryRun {
				verb, deleted, pruned = "dry run, nothing changed: ", "would delete", "would empty"
			}
			fmt.Fprintf(out, "%s%s %d events received and processed before %s (keys gone)\n", verb, deleted, res.RowsDeleted, fmtTime(res.KeyCutoff))
			fmt.Fprintf(out, "%s%s the payload of %d events processed before %s (keys kept)\n", verb, pruned, res.PayloadsPruned, fmtTime(res.PayloadCutoff))
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print JSON for scripts")
	f.Var(durationValue{&opts.OlderThan}, "older-than", "empty the payloads of events processed longer ago than this (required)")
	f.Var(durationValue{&opts.KeepKeysFor}, "keep-keys-for", "delete events, keys and all, received and processed longer ago than this")
	f.BoolVar(&opts.DryRun, "dry-run", false, "count what would change, and change nothing")
	return cmd
}
