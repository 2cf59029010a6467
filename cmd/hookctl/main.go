// Command hookctl is the operators' CLI for Hookline.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "hookctl: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	root := &cobra.Command{
		Use:           "hookctl",
		Short:         "Operate a Hookline webhook pipeline",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args[1:])
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		newMigrateCmd(getenv),
		newSendCmd(getenv),
		newSourcesCmd(getenv),
		newThrottleCmd(getenv),
		newShedCmd(getenv),
		newDoctorCmd(getenv),
		newStatusCmd(getenv),
		newPauseCmd(getenv),
		newResumeCmd(getenv),
		newDrainCmd(getenv),
		newEventsCmd(getenv),
		newReplayCmd(getenv),
		newRetryCmd(getenv),
		newPruneCmd(getenv),
		newBackfillReplayKeysCmd(getenv),
		newCatchupCmd(getenv),
		newProbeCmd(),
	)
	return root.ExecuteContext(ctx)
}
