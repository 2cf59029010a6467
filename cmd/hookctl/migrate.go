package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hookline/hookline/examples/balances"
	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/migrate"
)

func newMigrateCmd(getenv func(string) string) *cobra.Command {
	example := true
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply River's and Hookline's database migrations",
		Long: `Apply every pending migration: River's job tables, then Hookline's own
(migrations/), then the tables of the example handlers that the stock worker
runs (examples/balances). It is safe to run again, and two copies started at
once take turns on an advisory lock. Reads DATABASE_URL.

A deployment whose worker runs its own handlers passes --example=false and
applies its own tables from its deploy, with hookline.Migrate.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pool, err := connect(cmd, getenv)
			if err != nil {
				return err
			}
			defer pool.Close()
			var sets []hooklinetype.MigrationSet
			if example {
				sets = append(sets, balances.Migrations())
			}
			res, err := migrate.Up(cmd.Context(), pool, sets...)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "migrated: river versions applied %v, hookline versions applied %v", orNone(res.River), orNone(res.Hookline))
			for _, s := range sets {
				fmt.Fprintf(out, ", %s versions applied %v", s.Name, orNone(res.Sets[s.Name]))
			}
			fmt.Fprintln(out)
			return nil
		},
	}
	cmd.Flags().BoolVar(&example, "example", true, "also apply the example handlers' tables (examples/balances), which the stock worker needs")
	return cmd
}

func orNone[T any](vs []T) any {
	if len(vs) == 0 {
		return "(none, already current)"
	}
	return vs
}
