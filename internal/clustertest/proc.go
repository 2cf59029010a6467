package clustertest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/logtest"
)

// Proc is a running Hookline binary.
type Proc struct {
	// Name is the command: receiver, worker or hookctl.
	Name string
	// Addr is where it serves HTTP, and URL the same as http://Addr.
	Addr, URL string
	// Out holds everything it printed, stdout and stderr.
	Out *logtest.Buffer

	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig without waiting.
func (p *Proc) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("signal %s to %s (pid %d): %v", sig, p.Name, p.Pid(), err)
	}
}

// Stop sends sig and waits up to within for the process to exit, returning
// how it exited: nil for status 0.
func (p *Proc) Stop(t testing.TB, sig syscall.Signal, within time.Duration) error {
	t.Helper()
	p.Signal(t, sig)
	select {
	case <-p.done:
		return p.err
	case <-time.After(within):
		t.Fatalf("%s (pid %d) did not exit within %s of %s", p.Name, p.Pid(), within, sig)
		return nil
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill(t testing.TB) {
	t.Helper()
	err := p.Stop(t, syscall.SIGKILL, 10*time.Second)
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("kill %s (pid %d): %v", p.Name, p.Pid(), err)
	}
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// RSS returns the process's resident set size in bytes, from /proc.
func (p *Proc) RSS() (int64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return 0, fmt.Errorf("read rss of %s (pid %d): %w", p.Name, p.Pid(), err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmRSS %q of pid %d: %w", rest, p.Pid(), err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", p.Pid())
}
