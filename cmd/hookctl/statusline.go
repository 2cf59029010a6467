package main

import (
	"fmt"
	"io"
)

// statusLine is one terminal line redrawn in place, for the progress of
// replay, drain, backfill and catch-up: a line per update would scroll the
// screen. \r returns to the line's start and ESC[K erases what is left of
// a longer previous line.
type statusLine struct {
	w     io.Writer
	drawn bool
}

// draw replaces the line with s.
func (l *statusLine) draw(s string) {
	fmt.Fprintf(l.w, "\r%s\x1b[K", s)
	l.drawn = true
}

// erase clears the line, if one is drawn, so that what follows starts on a
// clean one.
func (l *statusLine) erase() {
	if l.drawn {
		fmt.Fprint(l.w, "\r\x1b[K")
		l.drawn = false
	}
}
