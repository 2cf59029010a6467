package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hookline/hookline/internal/sources"
)

func newSourcesCmd(getenv func(string) string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "sources",
		Short: "List the configured webhook sources (never their secrets)",
		Long: `List the sources the receiver would serve with this environment: the file
named by HOOKLINE_SOURCES, or else the stripe and bank sources from
STRIPE_WEBHOOK_SECRET and BANK_WEBHOOK_SECRET. Each secret is resolved, so a
missing one fails here as it would at start-up, but only its label is shown.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tol := sources.DefaultTolerance
			if v := getenv("STRIPE_TIMESTAMP_TOLERANCE"); v != "" {
				d, err := time.ParseDuration(v)
				if err != nil {
					return fmt.Errorf("STRIPE_TIMESTAMP_TOLERANCE=%q: %w", v, err)
				}
				tol = d
			}
			_, sums, err := sources.Load(getenv, getenv("HOOKLINE_SOURCES"), tol)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(sums)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tPATH\tTYPE\tSECRETS\tID FROM\tTYPE FROM\tOBJECT FROM\tTIME FROM\tREPLAY GUARD\tON BAD SIGNATURE\tALLOWED IPS")
			for _, s := range sums {
				ips := "any"
				if len(s.AllowIPs) > 0 {
					ips = strings.Join(s.AllowIPs, ", ")
				}
				object := cmp.Or(s.Object, "none")
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d (%s)\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", s.Name, s.Path, s.Type,
					len(s.SecretLabels), strings.Join(s.SecretLabels, ", "), s.ID, s.EventType, object, s.Time, s.ReplayGuard, s.FailureStatus, ips)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			// Below the table, where they cannot be missed.
			for _, s := range sums {
				for _, w := range s.Warnings {
					fmt.Fprintln(out, "warning:", w)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}
