package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/clustertest"
	"github.com/hookline/hookline/internal/pgtest"
	"github.com/hookline/hookline/internal/verify"
)

// makeRun is scripts/run.sh, what `make run` starts, on a database of its
// own and on free ports.
type makeRun struct {
	cmd                     *exec.Cmd
	receiverAddr, adminAddr string
	// banner is what the script printed up to "Ctrl-C stops everything".
	banner string
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
		name, _, _ := strings.Cut(kv, "=")
		if !slices.ContainsFunc([]string{"RIVERUI_", "DATABASE_", "WORKER_", "RECEIVER_", "INGEST_", "HOOKLINE_", "STRIPE_", "BANK_"},
			func(prefix string) bool { return strings.HasPrefix(name, prefix) }) {
			base = append(base, kv)
		}
	}
	receiverAddr := clustertest.FreeAddr(t)
	cmd.Env = append(base, append([]string{
		"HOOKLINE_BIN=" + bin,
		"DATABASE_URL=" + dbURL,
		"RECEIVER_ADDR=" + receiverAddr,
		"WORKER_ADDR=" + workerAddr,
		"BANK_WEBHOOK_SECRET=" + bankSecret,
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
				return &makeRun{cmd: cmd, receiverAddr: receiverAddr, adminAddr: workerAddr, banner: banner.String()}
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
	run := startMakeRun(t, db.URL, clustertest.FreeAddr(t), "HOOKLINE_DEV_RIVERUI_PASSWORD="+passwordFile)

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
	again := startMakeRun(t, pgtest.NewEmptyDB(t).URL, clustertest.FreeAddr(t), "HOOKLINE_DEV_RIVERUI_PASSWORD="+passwordFile)
	m = riverUIBanner.FindStringSubmatch(again.banner)
	require.NotNil(t, m, again.banner)
	require.Equal(t, password, m[2], "the password is generated once")
	require.Equal(t, http.StatusOK, again.riverUI(t, "dev", password))
}

func TestMakeRunUsesCredentialsFromTheEnvironmentWithoutPrintingThem(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmptyDB(t)
	passwordFile := filepath.Join(t.TempDir(), "riverui-password")
	run := startMakeRun(t, db.URL, clustertest.FreeAddr(t), "HOOKLINE_DEV_RIVERUI_PASSWORD="+passwordFile,
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
	port := clustertest.FreeAddr(t)[len("127.0.0.1:"):]
	run := startMakeRun(t, db.URL, ":"+port, "HOOKLINE_DEV_RIVERUI_PASSWORD="+passwordFile)
	require.Contains(t, run.banner, "River UI is off: WORKER_ADDR=:"+port+" is not a loopback address")
	require.Contains(t, run.banner, "[run] River UI: off")
	require.NoFileExists(t, passwordFile)
	run.adminAddr = "127.0.0.1:" + port
	require.Equal(t, http.StatusNotFound, run.riverUI(t, "", ""), "not mounted at all")
}

func TestMakeRunStaysWithinItsConnectionBudgetUnderAFlood(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmptyDB(t)
	run := startMakeRun(t, db.URL, clustertest.FreeAddr(t), "HOOKLINE_DEV_RIVERUI_PASSWORD="+filepath.Join(t.TempDir(), "riverui-password"))

	// The most connections each process holds at once, sampled while 64
	// clients post 2,000 signed deliveries, a tenth of them duplicates.
	most := map[string]int{}
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			rows, err := db.Pool.Query(context.Background(), `
				SELECT application_name, count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND application_name LIKE 'hookline-%' GROUP BY 1`)
			if err == nil {
				var app string
				var n int
				_, _ = pgx.ForEachRow(rows, []any{&app, &n}, func() error {
					most[app] = max(most[app], n)
					return nil
				})
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	url := "http://" + run.receiverAddr + "/api/webhooks/bank"
	ids := make(chan int)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 64 {
		wg.Go(func() {
			for i := range ids {
				if i%10 == 9 {
					i-- // a redelivery
				}
				// Not post: require must not fail a test from this goroutine.
				body := bankBody(fmt.Sprintf("tr_flood_%d", i), "transfer.settled", "acc_flood", 1)
				req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				if err != nil {
					failed.Add(1)
					continue
				}
				req.Header.Set(verify.HMACHeader, verify.SignHMAC(bankSecret, body))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}
		})
	}
	for i := range 2000 {
		ids <- i
	}
	close(ids)
	wg.Wait()
	// The worker drains what the flood left.
	clustertest.WaitFor(t, 60*time.Second, "the worker applies the flood", func() bool {
		var left int
		require.NoError(t, db.Pool.QueryRow(context.Background(),
			`SELECT count(*) FROM river_job WHERE state NOT IN ('completed', 'cancelled', 'discarded')`).Scan(&left))
		return left == 0
	})
	close(stop)
	<-sampled
	require.Zero(t, failed.Load())

	t.Logf("most connections held: %v", most)
	require.Positive(t, most["hookline-receiver"])
	require.Positive(t, most["hookline-worker"])
	// docs/SCALING.md: INGEST_BATCH_FLUSHERS + 2 for a batch receiver, at
	// most 20 for a worker.
	require.LessOrEqual(t, most["hookline-receiver"], 6)
	require.LessOrEqual(t, most["hookline-worker"], 20)
}
