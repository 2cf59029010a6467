package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/clustertest"
	"github.com/hookline/hookline/internal/verify"
)

func postStripe(t *testing.T, base, id, apiVersion, customer string, amount int64) int {
	t.Helper()
	body := fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":%q,"type":"charge.succeeded","data":{"object":{"amount":%d,"customer":%q}}}`,
		id, apiVersion, amount, customer)
	return post(t, base+"/api/webhooks/stripe", body, verify.StripeHeader, verify.SignStripe(stripeSecret, body, time.Now()))
}

func bankBody(id, eventType, account string, cents int64) []byte {
	return fmt.Appendf(nil, `{"id":%q,"type":%q,"account":%q,"amount_cents":%d}`, id, eventType, account, cents)
}

func postBank(t *testing.T, base string, body []byte) int {
	t.Helper()
	return post(t, base+"/api/webhooks/bank", body, verify.HMACHeader, verify.SignHMAC(bankSecret, body))
}

func post(t *testing.T, url string, body []byte, header, value string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set(header, value)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestPipelineAppliesEachSignedEventExactlyOnce(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	p.Forbid("cus_e2e", "acc_e2e") // body text; the secrets are always forbidden
	u := p.receiverURL

	require.Equal(t, 200, postStripe(t, u, "evt_a", "2023-10-16", "cus_e2e", 2000))
	require.Equal(t, 200, postStripe(t, u, "evt_a", "2023-10-16", "cus_e2e", 2000), "a replay is acknowledged")
	require.Equal(t, 200, postStripe(t, u, "evt_b", "2017-08-15", "cus_e2e", 1500), "another api_version is accepted")
	require.Equal(t, 200, postBank(t, u, bankBody("tr_1", "transfer.settled", "acc_e2e", 1250)))
	require.Equal(t, 200, postBank(t, u, bankBody("tr_2", "transfer.reversed", "acc_e2e", 250)))
	tampered := bankBody("tr_3", "transfer.settled", "acc_e2e", 1)
	require.Equal(t, 400, post(t, u+"/api/webhooks/bank", bytes.Replace(tampered, []byte(`1}`), []byte(`9}`), 1),
		verify.HMACHeader, verify.SignHMAC(bankSecret, tampered)))

	// hookctl send signs like the provider does.
	send := exec.Command(clustertest.Binary(t, "hookctl"), "send", "bank", "--url", u, "--id", "tr_cli",
		"--type", "transfer.settled", "--account", "acc_e2e", "--amount-cents", "7")
	send.Env = p.Env
	out, err := send.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "-> 200")

	states := p.WaitDrained(t, 30*time.Second)
	require.Equal(t, map[string]int{"completed": 5}, states)
	require.Equal(t, int64(3500), p.balance(t, "stripe:cus_e2e"))
	require.Equal(t, int64(1007), p.balance(t, "bank:acc_e2e"))

	// A graceful stop of both processes exits cleanly.
	require.NoError(t, p.receiver.Stop(t, syscall.SIGTERM, 30*time.Second))
	require.NoError(t, p.worker.Stop(t, syscall.SIGTERM, 30*time.Second))

}

// TestWorkerKilledMidJobIsRescuedAndAppliesOnce kills a worker with SIGKILL
// while its job is inside the business transaction. The transaction dies
// with the connection; River's rescuer, in a second worker with a short
// WORKER_RESCUE_AFTER, makes the job runnable again and it applies once.
func TestWorkerKilledMidJobIsRescuedAndAppliesOnce(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	ctx := context.Background()

	// Hold the balance row so the worker's effect blocks mid-transaction.
	_, err := p.DB.Pool.Exec(ctx, `INSERT INTO account_balances VALUES ('bank:acc_kill', 0)`)
	require.NoError(t, err)
	blocker, err := p.DB.Pool.Begin(ctx)
	require.NoError(t, err)
	defer blocker.Rollback(ctx) //nolint:errcheck
	_, err = blocker.Exec(ctx, `SELECT 1 FROM account_balances WHERE account = 'bank:acc_kill' FOR UPDATE`)
	require.NoError(t, err)

	require.Equal(t, 200, postBank(t, p.receiverURL, bankBody("tr_kill", "transfer.settled", "acc_kill", 300)))
	p.waitBlockedOn(t, "account_balances", 20*time.Second, "the worker to block inside its job")

	err = p.worker.Stop(t, syscall.SIGKILL, 10*time.Second)
	require.ErrorContains(t, err, "killed")
	require.NoError(t, blocker.Rollback(ctx))

	var state string
	require.NoError(t, p.DB.Pool.QueryRow(ctx, `SELECT state::text FROM river_job WHERE kind = 'process_event'`).Scan(&state))
	require.Equal(t, "running", state, "a killed worker leaves its job running until rescued")
	require.Equal(t, int64(0), p.balance(t, "bank:acc_kill"), "the killed attempt's effect must have rolled back")

	p.StartWorker(t, "WORKER_JOB_TIMEOUT=1s", "WORKER_THROTTLE_MAX_WAIT=500ms", "WORKER_RESCUE_AFTER=2s")
	// The new worker must first win leadership from the dead one (River's
	// leader TTL is about 15s) before its rescuer runs.
	states := p.WaitDrained(t, 90*time.Second)
	require.Equal(t, map[string]int{"completed": 1}, states)
	require.Equal(t, int64(300), p.balance(t, "bank:acc_kill"))

	var attempt int
	require.NoError(t, p.DB.Pool.QueryRow(ctx, `SELECT attempt FROM river_job WHERE kind = 'process_event'`).Scan(&attempt))
	require.Equal(t, 2, attempt, "the rescued job ran a second time")
}

// TestShutdownFinishesWorkInFlight sends SIGTERM to the receiver while a
// request is inside its transaction, and to the worker while a job is inside
// its: both must finish that work, answer or commit it, and exit 0.
func TestShutdownFinishesWorkInFlight(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	ctx := context.Background()

	// An uncommitted insert of the balance row will hold the job in flight
	// later; it must be in place before the event reaches the worker.
	blocker, err := p.DB.Pool.Begin(ctx)
	require.NoError(t, err)
	defer blocker.Rollback(ctx) //nolint:errcheck
	_, err = blocker.Exec(ctx, `INSERT INTO account_balances VALUES ('bank:acc_sd', 0)`)
	require.NoError(t, err)

	// An uncommitted insert of the same inbox key makes the receiver's
	// insert wait on the unique index: a request held in flight.
	holder, err := p.DB.Pool.Begin(ctx)
	require.NoError(t, err)
	defer holder.Rollback(ctx) //nolint:errcheck
	_, err = holder.Exec(ctx, `INSERT INTO inbox_events (source, event_id, payload) VALUES ('bank', 'tr_inflight', '')`)
	require.NoError(t, err)

	status := make(chan int, 1)
	go func() {
		status <- postBank(t, p.receiverURL, bankBody("tr_inflight", "transfer.settled", "acc_sd", 40))
	}()
	p.waitBlockedOn(t, "inbox_events", 10*time.Second, "the request to wait on the inbox key")
	p.receiver.Signal(t, syscall.SIGTERM)
	clustertest.WaitFor(t, 20*time.Second, "the stopping receiver to refuse new connections", func() bool {
		resp, err := http.Get(p.receiverURL + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err != nil
	})

	require.NoError(t, holder.Rollback(ctx))
	require.Equal(t, 200, <-status, "the request in flight is answered after its commit")
	require.NoError(t, p.receiver.Stop(t, syscall.SIGTERM, 30*time.Second))

	// Now the job is in flight in the worker, held on the balance row.
	p.waitBlockedOn(t, "account_balances", 20*time.Second, "the job to block on the balance row")
	p.worker.Signal(t, syscall.SIGTERM)
	clustertest.WaitFor(t, 20*time.Second, "the worker to begin its soft stop", func() bool {
		return strings.Contains(p.worker.Out.String(), "shutting down: finishing jobs in flight")
	})
	require.NoError(t, blocker.Commit(ctx))
	require.NoError(t, p.worker.Stop(t, syscall.SIGTERM, 30*time.Second))

	states := p.WaitDrained(t, time.Second)
	require.Equal(t, map[string]int{"completed": 1}, states)
	require.Equal(t, int64(40), p.balance(t, "bank:acc_sd"))
}

func TestReceiverAnswers503WhileDatabaseIsUnreachable(t *testing.T) {
	t.Parallel()
	// The database URL points at a port nothing listens on.
	c := clustertest.New(t)
	r := c.StartReceiver(t, "DATABASE_URL=postgres://postgres@"+clustertest.FreeAddr(t)+"/none?connect_timeout=2")
	addr := r.Addr

	body := bankBody("tr_nodb", "transfer.settled", "acc", 1)
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/api/webhooks/bank", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set(verify.HMACHeader, verify.SignHMAC(bankSecret, body))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "5", resp.Header.Get("Retry-After"))

	resp, err = http.Get("http://" + addr + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.NoError(t, r.Stop(t, syscall.SIGTERM, 10*time.Second))
}

func TestBinariesRefuseBadConfigurationNamingTheVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		binary string
		env    []string
		want   string
	}{
		{"receiver without bank secret", "receiver", []string{"DATABASE_URL=postgres://x/y", "STRIPE_WEBHOOK_SECRET=s"}, "BANK_WEBHOOK_SECRET"},
		{"receiver without stripe secret", "receiver", []string{"DATABASE_URL=postgres://x/y", "BANK_WEBHOOK_SECRET=s"}, "STRIPE_WEBHOOK_SECRET"},
		{"receiver without database", "receiver", []string{"STRIPE_WEBHOOK_SECRET=s", "BANK_WEBHOOK_SECRET=s"}, "DATABASE_URL"},
		{"worker with rescue shorter than job timeout", "worker", []string{"DATABASE_URL=postgres://x/y", "WORKER_JOB_TIMEOUT=1m", "WORKER_RESCUE_AFTER=30s"}, "WORKER_RESCUE_AFTER=30s must be longer than WORKER_JOB_TIMEOUT=1m0s"},
		{"worker with bad concurrency", "worker", []string{"DATABASE_URL=postgres://x/y", "WORKER_CONCURRENCY=lots"}, "WORKER_CONCURRENCY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(clustertest.Binary(t, tt.binary))
			cmd.Env = tt.env
			out, err := cmd.CombinedOutput()
			require.Error(t, err)
			require.Contains(t, string(out), tt.want)
			require.NotContains(t, strings.ToLower(string(out)), "panic")
		})
	}
}
