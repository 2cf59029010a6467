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
	msg, ok := dropRepeatedLines(err.Error())
	if !ok {
		return err
	}
	return &linesError{msg: msg, err: err}
}

// dropRepeatedLines returns msg with each line after the first written
// once, and whether any was dropped.
func dropRepeatedLines(msg string) (string, bool) {
	lines := strings.Split(msg, "\n")
	if len(lines) < 3 {
		return msg, false
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
		return msg, false
	}
	if len(kept) == 2 {
		return kept[0] + " " + strings.TrimLeft(kept[1], "\t "), true
	}
	return strings.Join(kept, "\n"), true
}

// linesError is an error with a shorter message than the one it wraps.
type linesError struct {
	msg string
	err error
}

func (e *linesError) Error() string { return e.msg }
func (e *linesError) Unwrap() error { return e.err }
