package logging

import "strings"

// DropRepeatedLines returns err with each line of its message printed
// once, or err itself when no line repeats. pgx joins the error of every
// connection attempt, and with sslmode=prefer, the default, it tries TLS
// and then plain text: a refused connection fails both the same way, and
// "connect: connection refused" was printed twice. When one detail line is
// left, it joins the first line, as pgx writes a single attempt's error.
// errors.Is and errors.As see err's chain as before.
func DropRepeatedLines(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	lines := strings.Split(msg, "\n")
	if len(lines) < 3 {
		return err
	}
	seen := map[string]bool{}
	kept := lines[:1]
	for _, l := range lines[1:] {
		if !seen[l] {
			seen[l] = true
			kept = append(kept, l)
		}
	}
	if len(kept) == len(lines) {
		return err
	}
	if len(kept) == 2 {
		return &linesError{msg: kept[0] + " " + strings.TrimLeft(kept[1], "\t "), err: err}
	}
	return &linesError{msg: strings.Join(kept, "\n"), err: err}
}

// linesError is an error with a shorter message than the one it wraps.
type linesError struct {
	msg string
	err error
}

func (e *linesError) Error() string { return e.msg }
func (e *linesError) Unwrap() error { return e.err }
