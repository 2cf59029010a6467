package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/hookline/hookline/internal/doctor"
)

// errChecksFailed makes the exit status non-zero after the report.
var errChecksFailed = errors.New("some checks failed")

func newDoctorCmd(getenv func(string) string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the database: migrations, indexes, idempotency, vacuum, connections",
		Long: `Check what the hot paths depend on, and print pass, warn or fail for each, with a
hint that fixes each failure:
  - River's and Hookline's migrations are all applied;
  - every index the hot paths need exists, and no index is INVALID (as a failed
    CREATE INDEX CONCURRENTLY leaves it);
  - the idempotency constraint PRIMARY KEY (source, event_id) is present, and
    no event is stored twice;
  - the sizes, dead tuples and last vacuum of river_job and inbox_events;
  - connection headroom.
It exits non-zero when any check fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pool, err := connect(cmd, getenv)
			if err != nil {
				return err
			}
			defer pool.Close()
			checks, err := doctor.Run(cmd.Context(), pool)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			failed := false
			for _, c := range checks {
				failed = failed || c.Status == doctor.Fail
			}
			if asJSON {
				if err := json.NewEncoder(out).Encode(checks); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				for _, c := range checks {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", strings.ToUpper(string(c.Status)), c.Name, c.Detail)
					if c.Hint != "" {
						fmt.Fprintf(tw, "\t\tfix: %s\n", c.Hint)
					}
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			if failed {
				return errChecksFailed
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}
