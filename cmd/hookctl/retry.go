package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

func newRetryCmd(getenv func(string) string) *cobra.Command {
	var asJSON, discarded, dryRun bool
	var source string
	cmd := &cobra.Command{
		Use:   "retry --discarded [--source S]",
		Short: "Re-drive dead-lettered (discarded) jobs of the events queue",
		Long: `Make the dead letters of the "events" queue run again: every job in state
discarded (its retries used up), of --source if given, becomes available
now, through River's JobRetry, which grants one more attempt to a job that
had used them all. It prints how many.

This is not a replay: the worker processes each event as usual, and one
that was processed meanwhile is completed without effect. Fix the cause
first (see "hookctl events list --status failed"), or the jobs fail again,
one attempt at a time. Cancelled jobs (permanent errors) are not retried.
Reads DATABASE_URL.`,
		Example: `  hookctl retry --discarded --dry-run
  hookctl retry --discarded --source stripe`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !discarded {
				return errors.New("say what to retry: --discarded (the dead-lettered jobs)")
			}
			client, closeDB, err := openOps(cmd, getenv)
			if err != nil {
				return err
			}
			defer closeDB()
			res, err := client.RetryDiscarded(cmd.Context(), source, dryRun)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, res)
			}
			what := "discarded jobs"
			if source != "" {
				what += " of source " + source
			}
			if dryRun {
				fmt.Fprintf(out, "would retry %d %s (dry run: nothing changed)\n", res.Count, what)
			} else {
				fmt.Fprintf(out, "retried %d %s: they are available to the workers now\n", res.Count, what)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print JSON for scripts")
	f.BoolVar(&discarded, "discarded", false, "retry the jobs in state discarded (required)")
	f.StringVar(&source, "source", "", "only the jobs of this source")
	f.BoolVar(&dryRun, "dry-run", false, "count them, and change nothing")
	return cmd
}
