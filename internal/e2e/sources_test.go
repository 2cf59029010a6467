package e2e_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/clustertest"
	"github.com/hookline/hookline/internal/verify"
)

const sourcesFile = `
sources:
  - name: github
    type: github
    secrets: [{label: current, env: GH_SECRET_NEW}, {label: previous, env: GH_SECRET_OLD}]
  - name: shop
    type: shopify
    failure_status: 401
    secrets: [{label: current, env: SHOP_SECRET}]
`

// TestSourcesFileConfiguresTheReceiverBinary declares sources in a file and
// checks that the real receiver serves them, and that hookctl lists them
// without their secrets.
func TestSourcesFileConfiguresTheReceiverBinary(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sources.yaml")
	require.NoError(t, os.WriteFile(path, []byte(sourcesFile), 0o600))
	env := []string{"HOOKLINE_SOURCES=" + path, "GH_SECRET_NEW=gh-new-secret", "GH_SECRET_OLD=gh-old-secret", "SHOP_SECRET=shop-secret"}

	list := exec.Command(clustertest.Binary(t, "hookctl"), "sources", "--json")
	list.Env = env
	out, err := list.CombinedOutput()
	require.NoError(t, err, "%s", out)
	var sums []struct {
		Name         string   `json:"name"`
		Type         string   `json:"type"`
		SecretLabels []string `json:"secret_labels"`
	}
	require.NoError(t, json.Unmarshal(out, &sums))
	require.Len(t, sums, 2)
	require.Equal(t, []string{"current", "previous"}, sums[0].SecretLabels)
	for _, secret := range []string{"gh-new-secret", "gh-old-secret", "shop-secret"} {
		require.NotContains(t, string(out), secret)
	}

	c := clustertest.New(t)
	c.Forbid("gh-new-secret", "gh-old-secret", "shop-secret")
	r := c.StartReceiver(t, env...)
	addr := r.Addr

	body := []byte(`{"zen":"Keep it logically awesome."}`)
	deliver := func(secret string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/webhooks/github", bytes.NewReader(body))
		req.Header.Set("X-Hub-Signature-256", verify.SignGitHub(secret, body))
		req.Header.Set("X-GitHub-Delivery", "d1b5a7e0-0000-0000-0000-000000000001")
		req.Header.Set("X-GitHub-Event", "ping")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, 200, deliver("gh-new-secret"))
	require.Equal(t, 200, deliver("gh-old-secret"), "the previous secret passes during rotation")
	require.Equal(t, 400, deliver("wrong"))

	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/webhooks/shop", strings.NewReader(`{}`))
	req.Header.Set("X-Shopify-Hmac-Sha256", "bm90IGl0")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 401, resp.StatusCode, "shop answers bad signatures with its configured status")

	require.NoError(t, r.Stop(t, syscall.SIGTERM, 20*time.Second))
	logs := r.Out.String()
	require.Contains(t, logs, `"reason":"no_match"`)
	for _, secret := range []string{"gh-new-secret", "gh-old-secret", "shop-secret"} {
		require.NotContains(t, logs, secret)
	}
}

func TestReceiverRefusesABadSourcesFileNamingTheField(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sources.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`sources: [{name: gh, type: github, secrets: [{label: a, env: MISSING_SECRET}]}]`), 0o600))
	cmd := exec.Command(clustertest.Binary(t, "receiver"))
	cmd.Env = []string{"HOOKLINE_SOURCES=" + path, "DATABASE_URL=postgres://x/y"}
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "receiver: HOOKLINE_SOURCES="+path+`: line 1: sources.gh.secrets[0]: environment variable MISSING_SECRET is not set`)
}
