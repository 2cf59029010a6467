package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/hookline/hookline/internal/ops"
)

func newRetryCmd(getenv func(string) string) *cobra.Command {
	var asJSON, discarded, cancelled, dryRun bool
	var source string
	cmd := &cobra.Command{
		Use:   "retry (--discarded | --cancelled) [--source S]",
		Short: "Re-drive the discarded (dead-lettered) or cancelled jobs of the events queue",
		Long: `Make the jobs of the "events" queue that will not run again on their own run
again: with --discarded, every job in state discarded (its retries used
up); with --cancelled, every job in state cancelled (its handler returned a
permanent error, or an operator cancelled it); of --source if given. Each
becomes available now, through River's JobRetry, which grants one more
attempt to a job that had used them all. It prints how many.

This is not a replay: the worker processes each event as usual, and one
that was processed meanwhile is completed without effect. Fix the cause
first (see "hookctl events list --status failed"), or the jobs fail again.
River deletes cancelled jobs a day after they end, and discarded ones after
a week; an event whose job is gone is applied with "hookctl replay".
Reads DATABASE_URL.`,
		Example: `  hookctl retry --discarded --dry-run
  hookctl retry --discarded --source stripe
  hookctl retry --cancelled --source stripe`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !discarded && !cancelled {
				return errors.New("say what to retry: --discarded (the dead-lettered jobs) or --cancelled (permanent errors), or both")
			}
			client, closeDB, err := openOps(cmd, getenv)
			if err != nil {
				return err
			}
			defer closeDB()
			var results []ops.RetryResult
			for _, retry := range []struct {
				asked bool
				run   func(ctx context.Context, source string, dryRun bool) (ops.RetryResult, error)
			}{{discarded, client.RetryDiscarded}, {cancelled, client.RetryCancelled}} {
				if !retry.asked {
					continue
				}
				res, err := retry.run(cmd.Context(), source, dryRun)
				if err != nil {
					return err
				}
				results = append(results, res)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if len(results) == 1 {
					return writeJSON(out, results[0])
				}
				return writeJSON(out, results)
			}
			for _, res := range results {
				printRetry(out, res)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print JSON for scripts (a list when both states are retried)")
	f.BoolVar(&discarded, "discarded", false, "retry the jobs in state discarded")
	f.BoolVar(&cancelled, "cancelled", false, "retry the jobs in state cancelled")
	f.StringVar(&source, "source", "", "only the jobs of this source")
	f.BoolVar(&dryRun, "dry-run", false, "count them, and change nothing")
	return cmd
}

func printRetry(out io.Writer, res ops.RetryResult) {
	what := res.State + " jobs"
	if res.Source != "" {
		what += " of source " + res.Source
	}
	if res.DryRun {
		fmt.Fprintf(out, "would retry %d %s (dry run: nothing changed)\n", res.Count, what)
	} else {
		fmt.Fprintf(out, "retried %d %s: they are available to the workers now\n", res.Count, what)
	}
}
