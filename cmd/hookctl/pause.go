package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hookline/hookline/internal/ops"
)

func newPauseCmd(getenv func(string) string) *cobra.Command {
	return newPauseResumeCmd(getenv, "pause",
		"Stop workers from fetching jobs of the events queue",
		`Pause the "events" queue with River's QueuePause: every worker stops
fetching its jobs within moments (River notifies them, and they re-check
every minute). Jobs already running finish. The receivers still accept and
store events, and their jobs wait, so the backlog grows until
"hookctl resume".

It works before any worker has started: River only creates a queue's
river_queue row when a worker starts working it, and its QueuePause fails
without one, so hookctl creates the row (as a worker would) in the same
transaction as the pause. A worker that starts later starts paused.
Pausing a paused queue changes nothing. Reads DATABASE_URL.`,
		(*ops.Client).Pause)
}

func newResumeCmd(getenv func(string) string) *cobra.Command {
	return newPauseResumeCmd(getenv, "resume",
		"Let workers fetch jobs of the events queue again",
		`Resume the "events" queue with River's QueueResume: workers fetch its
jobs again within moments. Resuming a queue that is not paused changes
nothing. Reads DATABASE_URL.`,
		(*ops.Client).Resume)
}

func newPauseResumeCmd(getenv func(string) string, use, short, long string,
	action func(*ops.Client, context.Context) (ops.PauseResult, error),
) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, closeDB, err := openOps(cmd, getenv)
			if err != nil {
				return err
			}
			defer closeDB()
			res, err := action(client, cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, res)
			}
			if res.CreatedQueueRow {
				fmt.Fprintf(out, "queue %s had no river_queue row (no worker has worked it in the last 24 hours); created it\n", res.Queue)
			}
			switch {
			case res.Paused && res.Changed:
				fmt.Fprintf(out, "paused queue %s at %s: workers fetch none of its jobs until `hookctl resume`\n", res.Queue, fmtTimePtr(res.PausedAt))
			case res.Paused:
				fmt.Fprintf(out, "queue %s was already paused, since %s\n", res.Queue, fmtTimePtr(res.PausedAt))
			case res.Changed:
				fmt.Fprintf(out, "resumed queue %s: workers fetch its jobs again\n", res.Queue)
			default:
				fmt.Fprintf(out, "queue %s was not paused\n", res.Queue)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}
