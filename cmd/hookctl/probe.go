package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

func newProbeCmd() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "probe URL",
		Short: "Exit 0 if URL answers 2xx: a healthcheck for images without a shell",
		Long: `Send GET URL and exit 0 if the answer is 2xx, non-zero otherwise, naming
the status and the reason the answer gives, or the error. The container image is distroless (no shell, no
curl), so Compose healthchecks and Docker's HEALTHCHECK run this instead:

  hookctl probe http://127.0.0.1:8080/readyz

It reads no configuration and needs no database.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return probe(cmd.Context(), args[0], timeout, cmd.OutOrStdout())
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "give up after this long")
	return cmd
}

func probe(ctx context.Context, url string, timeout time.Duration, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// Hookline's probes give their reason as {"error": "..."}; a
		// healthcheck's log then says what to fix, such as "run hookctl
		// migrate".
		var answer struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &answer) == nil && answer.Error != "" {
			return fmt.Errorf("probe %s: answered %s: %s", url, resp.Status, answer.Error)
		}
		return fmt.Errorf("probe %s: answered %s", url, resp.Status)
	}
	fmt.Fprintf(out, "%s: %s\n", url, resp.Status)
	return nil
}
