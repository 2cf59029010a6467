// Package stripemocktest runs stripe-mock, Stripe's own mock of its API
// (github.com/stripe/stripe-mock), for tests: every request it answers is
// checked against Stripe's OpenAPI specification, so a test against it
// proves the requests are valid Stripe API calls.
//
// The binary is built once per version from the Go module proxy, with the
// go command running the tests, into the user's cache directory
// (HOOKLINE_TOOLS_DIR overrides it), and reused by later runs. Test
// packages that run at once share one build, under a file lock.
//
// If it cannot be built (no route to the module proxy), the test fails,
// saying why: a test suite that passes without having run these tests
// would claim what it has not checked. HOOKLINE_SKIP_STRIPE_MOCK=1 skips
// them instead, deliberately, with a message.
package stripemocktest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Version is the stripe-mock release the tests run.
const Version = "v0.203.0"

const module = "github.com/stripe/stripe-mock"

// Start runs stripe-mock on a free loopback port until t ends and returns
// its base URL, such as http://127.0.0.1:41234.
func Start(t testing.TB) string {
	t.Helper()
	if os.Getenv("HOOKLINE_SKIP_STRIPE_MOCK") == "1" {
		t.Skip("HOOKLINE_SKIP_STRIPE_MOCK=1: skipping a test against stripe-mock")
	}
	bin, err := Binary()
	if err != nil {
		t.Fatalf("stripemocktest: %v\n(the tests build stripe-mock %s from the Go module proxy; "+
			"set GOPROXY to a proxy that serves it, or HOOKLINE_SKIP_STRIPE_MOCK=1 to skip these tests knowingly)", err, Version)
	}
	// Port 0 on both listeners: stripe-mock would otherwise also bind
	// HTTPS on 12112, which parallel test packages would fight over.
	cmd := exec.Command(bin, "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("stripemocktest: %v", err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("stripemocktest: start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		// It prints "Listening for HTTP at address: 127.0.0.1:41234";
		// the rest of its output is read and dropped, so that it never
		// blocks on a full pipe.
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "Listening for HTTP at address: "); ok {
				addr <- a
			}
		}
	}()
	select {
	case a := <-addr:
		return "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatalf("stripemocktest: stripe-mock did not say where it listens within 30s")
		return ""
	}
}

// Binary returns the path of the stripe-mock binary, building it first if
// the cache has none.
func Binary() (string, error) {
	dir := os.Getenv("HOOKLINE_TOOLS_DIR")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("find a cache directory (or set HOOKLINE_TOOLS_DIR): %w", err)
		}
		dir = filepath.Join(cache, "hookline", "tools")
	}
	dir = filepath.Join(dir, "stripe-mock@"+Version+"-"+runtime.GOOS+"-"+runtime.GOARCH)
	bin := filepath.Join(dir, "stripe-mock")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("open build lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("take build lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing releases it anyway
	// Another test binary may have built it while this one waited.
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", fmt.Errorf("create build directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// go install with a version builds the module as its own go.mod and
	// go.sum pin it, checked against the checksum database, outside this
	// module; GOFLAGS from the caller (-mod=vendor, say) would not apply.
	cmd := exec.CommandContext(ctx, goBin, "install", module+"@"+Version)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %w\n%s", module, Version, err, out)
	}
	// A rename is atomic: no other run ever sees half a binary.
	if err := os.Rename(filepath.Join(tmp, "stripe-mock"), bin); err != nil {
		return "", fmt.Errorf("install stripe-mock: %w", err)
	}
	return bin, nil
}
