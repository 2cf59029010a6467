package main

import (
	"os"
	"testing"
	"time"
)

// TestStatCPUReadsUtimeAndStimeAfterTheCommandName: fields 14 and 15 of
// /proc/<pid>/stat, counted after the command name, which may hold spaces
// and parentheses.
func TestStatCPUReadsUtimeAndStimeAfterTheCommandName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, stat string
		want       float64
	}{
		{"plain", "1234 (receiver) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 8 0 100 0 0", 3.80},
		{"spaces and parentheses in the name", "77 (postgres: a (b) c) R 1 77 77 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 5 0 0", 0.10},
		{"truncated", "77 (x) R 1 2", 0},
		{"no name", "garbage", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := statCPU([]byte(tc.stat)); got != tc.want {
				t.Fatalf("statCPU(%q) = %v, want %v", tc.stat, got, tc.want)
			}
		})
	}
}

// TestProcCPUGrowsWithWork: the test process's own CPU time rises while
// it spins.
func TestProcCPUGrowsWithWork(t *testing.T) {
	before := procCPU(os.Getpid())
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
	}
	if after := procCPU(os.Getpid()); after-before < 0.1 {
		t.Fatalf("CPU went from %.2f to %.2f s over 300 ms of spinning", before, after)
	}
}
