package main

import (
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/hookline/hookline/examples/balances"
	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/dbpool"
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

func connect(cmd *cobra.Command, getenv func(string) string) (*pgxpool.Pool, error) {
	url, err := config.Value(getenv, "DATABASE_URL")
	if err != nil {
		return nil, err
	}
	if url == "" {
		return nil, fmt.Errorf("DATABASE_URL (or DATABASE_URL_FILE) is not set")
	}
	// dbpool, unlike pgxpool.New, never quotes the URL (and its password)
	// in an error. A CLI needs only a few connections.
	pool, err := dbpool.New(cmd.Context(), url, 0, 4, "hookline-hookctl")
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(cmd.Context()); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return pool, nil
}

func orNone[T any](vs []T) any {
	if len(vs) == 0 {
		return "(none, already current)"
	}
	return vs
}
