package main

// This file holds the helpers that hookctl's commands share: connecting to
// the database, writing JSON and tables, reading durations and times from
// flags, and naming the operator. A command's own file keeps only what that
// command uses.

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/user"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/dbpool"
	"github.com/hookline/hookline/internal/ops"
)

// requiredSince parses a --since flag that must be given; example shows
// one when it is not.
func requiredSince(since, example string) (time.Time, error) {
	if since == "" {
		return time.Time{}, fmt.Errorf("--since is required, such as --since %s", example)
	}
	return parseSince(since, time.Now())
}

// connect opens a small pool on DATABASE_URL (or DATABASE_URL_FILE) and
// pings it, so that a wrong URL fails before the command does any work.
func connect(cmd *cobra.Command, getenv func(string) string) (*pgxpool.Pool, error) {
	url, err := config.Required(getenv, "DATABASE_URL", "")
	if err != nil {
		return nil, err
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

// openOps connects to DATABASE_URL and returns an ops client and a
// function that closes the connection.
func openOps(cmd *cobra.Command, getenv func(string) string) (*ops.Client, func(), error) {
	pool, err := connect(cmd, getenv)
	if err != nil {
		return nil, nil, err
	}
	client, err := ops.New(pool)
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return client, pool.Close, nil
}

// writeJSON writes v to w as indented JSON: the --json output of every
// command.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// isTerminal reports whether f is an *os.File open on a terminal.
// golang.org/x/term is not a dependency, so this takes a character device
// other than /dev/null (what cron, systemd and go test give as stdin) to be
// a terminal: close enough to decide whether to redraw a line or to ask a
// question.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	if !ok {
		return false
	}
	info, err := file.Stat()
	if err != nil || info.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(info, null)
}

var daysPrefix = regexp.MustCompile(`^(\d+)d(.*)$`)

// parseDuration is time.ParseDuration that also accepts a leading number of
// days: "30d", "1d12h".
func parseDuration(s string) (time.Duration, error) {
	var days time.Duration
	rest := strings.TrimSpace(s)
	if m := daysPrefix.FindStringSubmatch(rest); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil || n > 100_000 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		days, rest = time.Duration(n)*24*time.Hour, m[2]
		if rest == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(rest)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: want e.g. 90m, 36h, 7d or 1d12h", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("invalid duration %q: negative", s)
	}
	return days + d, nil
}

// durationValue is a flag holding a duration that may be given in days.
type durationValue struct{ d *time.Duration }

// String implements pflag.Value: whole days as "7d", anything else as
// time.Duration prints it.
func (v durationValue) String() string {
	if v.d == nil || *v.d == 0 {
		return "0"
	}
	if *v.d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", *v.d/(24*time.Hour))
	}
	return v.d.String()
}

// Set implements pflag.Value, with parseDuration.
func (v durationValue) Set(s string) error {
	d, err := parseDuration(s)
	if err != nil {
		return err
	}
	*v.d = d
	return nil
}

// Type implements pflag.Value.
func (durationValue) Type() string { return "duration" }

// parseSince reads a start time: a duration before now ("1h", "2d") or an
// RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := parseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since %q: want a duration such as 1h or 2d, or an RFC 3339 time such as 2026-01-02T15:04:05Z", s)
	}
	return now.Add(-d), nil
}

// fmtTime prints t in UTC to the second, or "-" for the zero time.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// fmtTimePtr is fmtTime of *t, or "-" when t is nil.
func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return fmtTime(*t)
}

// fmtAge prints a duration rounded to what a reader can use: milliseconds
// under a second, tenths of a second under a minute, seconds beyond.
func fmtAge(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

// oneLine makes untrusted text safe for one table cell: no tabs, newlines
// or other control characters, and at most n runes.
func oneLine(s string, n int) string {
	s = printable(strings.Join(strings.Fields(s), " "))
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// printable escapes what a terminal could act on in untrusted text: control
// characters other than newline and tab, and bytes that are not UTF-8. The
// --json form has the byte-exact body.
func printable(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, "\\x%02x", s[0])
		case r == '\n' || r == '\t' || unicode.IsPrint(r):
			b.WriteRune(r)
		default:
			fmt.Fprintf(&b, "\\u%04x", r)
		}
		s = s[size:]
	}
	return b.String()
}

// currentUser is $USER, or else the OS user's name.
func currentUser(getenv func(string) string) string {
	if u := getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

// operatorName names who changed a setting: currentUser, or "unknown".
func operatorName(getenv func(string) string) string {
	if u := currentUser(getenv); u != "" {
		return u
	}
	return "unknown"
}
