package clustertest

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

// recorder is a testing.TB that keeps the errors reported to it, so a test
// can check that a check fails.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// TestLogCheckFailsWhenAProcessPrintsAForbiddenString makes a receiver log a
// string the test forbids (its own listening address, which it always
// logs), and checks that the log check reports it without repeating it.
func TestLogCheckFailsWhenAProcessPrintsAForbiddenString(t *testing.T) {
	c := New(t)
	r := c.StartReceiver(t)
	WaitFor(t, 10*time.Second, "the receiver to log its address", func() bool {
		return strings.Contains(r.Out.String(), r.Addr)
	})

	clean := &recorder{TB: t}
	c.checkLogs(clean)
	if len(clean.errors) != 0 {
		t.Fatalf("no forbidden string was printed, yet the check reported %q", clean.errors)
	}

	c.Forbid(r.Addr)
	dirty := &recorder{TB: t}
	c.checkLogs(dirty)
	if len(dirty.errors) == 0 {
		t.Fatal("the receiver printed a forbidden string and the check did not report it")
	}
	for _, e := range dirty.errors {
		if !strings.Contains(e, "receiver") || strings.Contains(e, r.Addr) {
			t.Errorf("report %q should name the process and not repeat the string", e)
		}
	}
	// Taken back, so that the real check at cleanup passes.
	c.mu.Lock()
	c.forbidden = c.forbidden[:len(c.forbidden)-1]
	c.mu.Unlock()
}
