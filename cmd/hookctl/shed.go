package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hookline/hookline/internal/shed"
)

func newShedCmd(getenv func(string) string) *cobra.Command {
	var rate float64
	var off, asJSON bool
	cmd := &cobra.Command{
		Use:   "shed <source> --rate R | [<source>] --off",
		Short: "Shed load: answer 429 above R events/s for a source, live",
		Long: `An emergency lever for a flood. Above R events per second for the source,
every receiver answers 429 with Retry-After. The provider retries later and
nothing is lost, because nothing was acknowledged. Receivers pick up a
change within a second. The limit applies per receiver process.

--off lifts the limit for the source, or for every source if none is given.`,
		Example: `  hookctl shed stripe --rate 200
  hookctl shed stripe --off`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			source := ""
			if len(args) == 1 {
				source = args[0]
			}
			switch {
			case off && cmd.Flags().Changed("rate"):
				return errors.New("give --rate or --off, not both")
			case !off && source == "":
				return errors.New("name the source to shed")
			case !off && rate <= 0:
				return errors.New("--rate must be positive (use --off to lift the limit)")
			}
			r := rate
			if off {
				r = -1
			}
			pool, err := connect(cmd, getenv)
			if err != nil {
				return err
			}
			defer pool.Close()
			if err := shed.Set(cmd.Context(), pool, source, r, operatorName(getenv)); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(out).Encode(map[string]any{"source": source, "off": off, "rate": rate})
			}
			switch {
			case off && source == "":
				fmt.Fprintln(out, "shedding lifted for every source; receivers apply it within ~1s")
			case off:
				fmt.Fprintf(out, "shedding lifted for %s; receivers apply it within ~1s\n", source)
			default:
				fmt.Fprintf(out, "%s limited to %g events/s per receiver; above it the answer is 429 with Retry-After (within ~1s)\n", source, rate)
			}
			return nil
		},
	}
	cmd.Flags().Float64Var(&rate, "rate", 0, "events per second admitted per receiver")
	cmd.Flags().BoolVar(&off, "off", false, "lift the limit")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}
