package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/hookline/hookline/internal/throttle"
)

func newThrottleCmd(getenv func(string) string) *cobra.Command {
	var reset, asJSON bool
	cmd := &cobra.Command{
		Use:   "throttle [<N> | --reset]",
		Short: "Show or set the global worker concurrency limit, live",
		Long: `Set how many jobs all worker processes together may run at once. The limit
is global: the live worker processes share it evenly (see worker_processes),
each capped by its own WORKER_CONCURRENCY. It takes effect within about a
second, with no restart: workers hear a NOTIFY and also re-read the setting
every second. Jobs already running finish; jobs over the limit wait, without
their timeout running, and go back to the queue after 30 s of waiting.

--reset removes the limit: each process returns to its WORKER_CONCURRENCY.
0 stops all processing (hookctl pause does the same through River).

With no argument, show the limit, who set it and when, and each live
worker's share of it with the jobs it executes and those waiting at its
gate (River counts those as running too).`,
		Example: `  hookctl throttle
  hookctl throttle 5
  hookctl throttle --reset`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 || (reset && len(args) == 1) {
				return errors.New("give either a limit N or --reset (or nothing, to show the limit)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && !reset {
				return showThrottle(cmd, getenv, asJSON)
			}
			limit := -1
			if !reset {
				n, err := strconv.Atoi(args[0])
				if err != nil || n < 0 {
					return fmt.Errorf("limit %q: want a whole number, 0 or more", args[0])
				}
				limit = n
			}
			pool, err := connect(cmd, getenv)
			if err != nil {
				return err
			}
			defer pool.Close()
			ctx := cmd.Context()
			before, wasSet, err := throttle.GlobalLimit(ctx, pool)
			if err != nil {
				return err
			}
			if err := throttle.SetGlobalLimit(ctx, pool, limit, operatorName(getenv)); err != nil {
				return err
			}
			procs, err := throttle.LiveProcesses(ctx, pool, 5*time.Second)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(out).Encode(map[string]any{
					"previous": limitOrNil(before, wasSet), "limit": limitOrNil(limit, limit >= 0), "live_workers": procs,
				})
			}
			fmt.Fprintf(out, "global concurrency limit: %s -> %s\n", describeLimit(before, wasSet), describeLimit(limit, limit >= 0))
			fmt.Fprintf(out, "%d live worker process(es) will apply it within ~1s:\n", len(procs))
			for _, p := range procs {
				fmt.Fprintf(out, "  %s (host %s, pid %d): WORKER_CONCURRENCY %d, running at most %d now\n",
					p.ID, p.Host, p.PID, p.ConfiguredLimit, p.EffectiveLimit)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&reset, "reset", false, "remove the limit; each process returns to its WORKER_CONCURRENCY")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

// throttleView is what "hookctl throttle" with no argument shows.
type throttleView struct {
	throttle.Setting
	LiveWorkers []throttle.Process `json:"live_workers"`
}

// showThrottle prints the global limit and each live worker's share.
func showThrottle(cmd *cobra.Command, getenv func(string) string, asJSON bool) error {
	pool, err := connect(cmd, getenv)
	if err != nil {
		return err
	}
	defer pool.Close()
	ctx := cmd.Context()
	var v throttleView
	if v.Setting, err = throttle.Current(ctx, pool); err != nil {
		return err
	}
	if v.LiveWorkers, err = throttle.LiveProcesses(ctx, pool, throttle.AnnouncedWithin); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if asJSON {
		return writeJSON(out, v)
	}
	if v.Limit == nil {
		fmt.Fprintln(out, "global concurrency limit: none (each process runs up to its WORKER_CONCURRENCY)")
	} else {
		fmt.Fprintf(out, "global concurrency limit: %d (set by %s at %s)\n", *v.Limit, *v.SetBy, fmtTime(*v.SetAt))
	}
	fmt.Fprintf(out, "%d live worker process(es) (announced in the last %s):\n", len(v.LiveWorkers), throttle.AnnouncedWithin)
	for _, p := range v.LiveWorkers {
		share := "its own"
		if v.Limit != nil {
			share = "its share"
		}
		fmt.Fprintf(out, "  %s (host %s, pid %d): WORKER_CONCURRENCY %d, runs at most %d (%s); %d executing, %d waiting at the gate\n",
			p.ID, p.Host, p.PID, p.ConfiguredLimit, p.EffectiveLimit, share, p.Executing, p.WaitingAtGate)
	}
	return nil
}

func describeLimit(n int, set bool) string {
	if !set {
		return "none (each process runs up to its WORKER_CONCURRENCY)"
	}
	return strconv.Itoa(n)
}

func limitOrNil(n int, set bool) any {
	if !set {
		return nil
	}
	return n
}
