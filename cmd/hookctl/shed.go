package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/hookline/hookline/internal/shed"
	"github.com/hookline/hookline/internal/sources"
)

func newShedCmd(getenv func(string) string) *cobra.Command {
	var rate float64
	var off, force, asJSON bool
	cmd := &cobra.Command{
		Use:   "shed [<source> --rate R | [<source>] --off]",
		Short: "Show the sheds, or shed load: answer 429 above R events/s for a source, live",
		Long: `An emergency lever for a flood. Above R events per second for the source,
every receiver answers 429 with Retry-After. The provider retries later and
nothing is lost, because nothing was acknowledged. Receivers pick up a
change within a second. The limit applies per receiver process.

The source must be one the receivers serve: a source of the file named by
HOOKLINE_SOURCES, or stripe or bank without one (as "hookctl sources" shows;
no secret is needed to check the name). --force sheds a name anyway, for a
receiver configured differently from this environment.

--off lifts the limit for the source, or for every source if none is given.
With no argument, show the sources shed, with their rates.`,
		Example: `  hookctl shed
  hookctl shed stripe --rate 200
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
			case !off && source == "" && !cmd.Flags().Changed("rate"):
				return showSheds(cmd, getenv, asJSON)
			case !off && source == "":
				return errors.New("name the source to shed")
			case !off && rate <= 0:
				return errors.New("--rate must be positive (use --off to lift the limit)")
			}
			if !off && !force {
				if err := checkSource(getenv, source); err != nil {
					return err
				}
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
			ctx := cmd.Context()
			before, err := shed.List(ctx, pool)
			if err != nil {
				return err
			}
			if err := shed.Set(ctx, pool, source, r, operatorName(getenv)); err != nil {
				return err
			}
			wasShed := source == "" && len(before) > 0 || slices.ContainsFunc(before, func(a shed.Active) bool { return a.Source == source })
			out := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(out).Encode(map[string]any{"source": source, "off": off, "rate": rate, "was_shed": wasShed})
			}
			switch {
			case off && !wasShed && source == "":
				fmt.Fprintln(out, "no source was shed; nothing changed")
			case off && !wasShed:
				fmt.Fprintf(out, "%s was not shed; nothing changed\n", source)
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
	cmd.Flags().BoolVar(&force, "force", false, "shed a source this environment's configuration does not declare")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

// checkSource refuses a source the receivers do not serve: a shed for it
// would never apply, and a typo ("strpe") would leave the flood running
// while the operator believes it handled.
func checkSource(getenv func(string) string, source string) error {
	path := getenv("HOOKLINE_SOURCES")
	names, err := sources.Names(path)
	if err != nil {
		return fmt.Errorf("check the source name: %w (--force sheds %q without the check)", err, source)
	}
	if slices.Contains(names, source) {
		return nil
	}
	from := "without HOOKLINE_SOURCES the receivers serve"
	if path != "" {
		from = "HOOKLINE_SOURCES=" + path + " declares"
	}
	msg := fmt.Sprintf("source %q is not configured: %s %s", source, from, strings.Join(names, ", "))
	if guess := sources.Nearest(source, names); guess != "" {
		msg += fmt.Sprintf("; did you mean %q?", guess)
	}
	return fmt.Errorf("%s (--force sheds it anyway, for receivers configured otherwise)", msg)
}

// showSheds prints the sheds in force.
func showSheds(cmd *cobra.Command, getenv func(string) string, asJSON bool) error {
	pool, err := connect(cmd, getenv)
	if err != nil {
		return err
	}
	defer pool.Close()
	active, err := shed.List(cmd.Context(), pool)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if asJSON {
		return writeJSON(out, map[string]any{"sheds": append([]shed.Active{}, active...)})
	}
	if len(active) == 0 {
		fmt.Fprintln(out, "no source is shed: the receivers admit every source")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tRATE (EVENTS/S PER RECEIVER)\tSET BY\tSET AT")
	for _, a := range active {
		fmt.Fprintf(tw, "%s\t%g\t%s\t%s\n", a.Source, a.Rate, a.SetBy, fmtTime(a.SetAt))
	}
	return tw.Flush()
}
