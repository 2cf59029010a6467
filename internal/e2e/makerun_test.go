package e2e_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/clustertest"
	"github.com/hookline/hookline/internal/pgtest"
)

// makeRun is scripts/run.sh, what `make run` starts, on a database of its
// own and on free ports.
type makeRun struct {
	cmd       *exec.Cmd
	adminAddr string
	// banner is what the script printed up to "Ctrl-C stops everything".
	banner string
}

// freeAddr returns a loopback address with a port nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// startMakeRun runs scripts/run.sh with env added to its environment, and
// waits for its banner. The script and the processes it started stop when
// t ends.
func startMakeRun(t *testing.T, dbURL, workerAddr string, env ...string) *makeRun {
	t.Helper()
	bin := filepath.Dir(clustertest.Binary(t, "hookctl"))
	script, err := filepath.Abs("../../scripts/run.sh")
	require.NoError(t, err)
	cmd := exec.Command("bash", script)
	var base []string
	for _, kv := range os.Environ() {
		// Nothing of the developer's own set-up leaks in.
		if !strings.HasPrefix(kv, "RIVERUI_") && !strings.HasPrefix(kv, "DATABASE_URL") && !strings.HasPrefix(kv, "WORKER_") && !strings.HasPrefix(kv, "RECEIVER_") {
			base = append(base, kv)
		}
	}
	cmd.Env = append(base, append([]string{
		"HOOKLINE_BIN=" + bin,
		"DATABASE_URL=" + dbURL,
		"RECEIVER_ADDR=" + freeAddr(t),
		"WORKER_ADDR=" + workerAddr,
	}, env...)...)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		// The script's TERM trap stops the receiver and the worker.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("scripts/run.sh did not stop within 40s of SIGTERM")
		}
	})

	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, out)
	}()
	var banner strings.Builder
	timeout := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			require.True(t, ok, "scripts/run.sh ended before its banner:\n%s", banner.String())
			banner.WriteString(line + "\n")
			if strings.Contains(line, "Ctrl-C stops everything") {
				// Keep draining, so the processes never block on a full pipe.
				go func() {
					for range lines {
					}
				}()
				return &makeRun{cmd: cmd, adminAddr: workerAddr, banner: banner.String()}
			}
		case <-timeout:
			t.Fatalf("no banner from scripts/run.sh within 60s:\n%s", banner.String())
		}
	}
}

// riverUI answers GET /riverui/ on the admin address with user and pass
// (none if user is empty).
func (r *makeRun) riverUI(t *testing.T, user, pass string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+r.adminAddr+"/riverui/", nil)
	require.NoError(t, err)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

var riverUIBanner = regexp.MustCompile(`\[run\] River UI: http://(\S+)/riverui/ \(user dev, password (\S+), kept in (\S+)\)`)

func TestMakeRunServesRiverUIWithTheDevelopmentPasswordItPrintsAndKeeps(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmptyDB(t)
	passwordFile := filepath.Join(t.TempDir(), "dev", "riverui-password")
	run := startMakeRun(t, db.URL, freeAddr(t), "HOOKLINE_DEV_RIVERUI_PASSWORD="+passwordFile)

	m := riverUIBanner.FindStringSubmatch(run.banner)
	require.NotNil(t, m, "the banner says where River UI is and how to log in:\n%s", run.banner)
	require.Equal(t, run.adminAddr, m[1])
	password := m[2]
	require.Equal(t, passwordFile, m[3])
	require.Len(t, password, 24)

	info, err := os.Stat(passwordFile)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "only its owner may read the password")
	stored, err := os.ReadFile(passwordFile)
	require.NoError(t, err)
	require.Equal(t, password, strings.TrimSpace(string(stored)))

	require.Equal(t, http.StatusOK, run.riverUI(t, "dev", password))
	require.Equal(t, http.StatusUnauthorized, run.riverUI(t, "", ""))
	require.Equal(t, http.StatusUnauthorized, run.riverUI(t, "dev", "wrong"))

	// A second run keeps the password, on a second database.
	again := startMakeRun(t, pgtest.NewEmptyDB(t).URL, freeAddr(t), "HOOKLINE_DEV_RIVERUI_PASSWORD="+passwordFile)
	m = riverUIBanner.FindStringSubmatch(again.banner)
	require.NotNil(t, m, again.banner)
	require.Equal(t, password, m[2], "the password is generated once")
	require.Equal(t, http.StatusOK, again.riverUI(t, "dev", password))
}

func TestMakeRunUsesCredentialsFromTheEnvironmentWithoutPrintingThem(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmptyDB(t)
	passwordFile := filepath.Join(t.TempDir(), "riverui-password")
	run := startMakeRun(t, db.URL, freeAddr(t), "HOOKLINE_DEV_RIVERUI_PASSWORD="+passwordFile,
		"RIVERUI_USERNAME=ops", "RIVERUI_PASSWORD=env-secret-4f9a")
	require.NotContains(t, run.banner, "env-secret-4f9a")
	require.Contains(t, run.banner, "[run] River UI: http://"+run.adminAddr+"/riverui/ (with the RIVERUI_* credentials from the environment)")
	require.NoFileExists(t, passwordFile, "no development password is generated")
	require.Equal(t, http.StatusOK, run.riverUI(t, "ops", "env-secret-4f9a"))
	require.Equal(t, http.StatusUnauthorized, run.riverUI(t, "dev", ""))
}

func TestMakeRunLeavesRiverUIOffOnAnAddressThatIsNotLoopback(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmptyDB(t)
	passwordFile := filepath.Join(t.TempDir(), "riverui-password")
	// Every interface: reachable from other machines.
	port := freeAddr(t)[len("127.0.0.1:"):]
	run := startMakeRun(t, db.URL, ":"+port, "HOOKLINE_DEV_RIVERUI_PASSWORD="+passwordFile)
	require.Contains(t, run.banner, "River UI is off: WORKER_ADDR=:"+port+" is not a loopback address")
	require.Contains(t, run.banner, "[run] River UI: off")
	require.NoFileExists(t, passwordFile)
	run.adminAddr = "127.0.0.1:" + port
	require.Equal(t, http.StatusNotFound, run.riverUI(t, "", ""), "not mounted at all")
}
