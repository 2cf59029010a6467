package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A hook with two deliveries in GitHub's documented shape: one failed
// (502), one succeeded. Redeliveries are recorded.
func fakeGitHubHook(t *testing.T, token string) (string, func() []string) {
	var mu sync.Mutex
	var posts []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, `{"message":"Bad credentials %s"}`, r.Header.Get("Authorization"))
			return
		}
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/repos/acme/shop/hooks/7/deliveries":
			at := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
			fmt.Fprintf(w, `[{"id":2,"guid":"0b989ba4-242f-11e5-81e1-c7b6966d2516","delivered_at":%q,"redelivery":false,"duration":0.27,"status":"OK","status_code":200,"event":"push","action":null,"installation_id":null,"repository_id":1},
				{"id":1,"guid":"58474f00-b361-11eb-836d-0e4f3503ccbe","delivered_at":%q,"redelivery":false,"duration":10.0,"status":"Timed out","status_code":0,"event":"issues","action":"opened","installation_id":null,"repository_id":1}]`, at, at)
		case r.Method == http.MethodPost:
			mu.Lock()
			posts = append(posts, r.URL.Path)
			mu.Unlock()
			w.WriteHeader(http.StatusAccepted)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), posts...) }
}

func TestCatchupGitHubRedeliversTheFailedDelivery(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const token = "github_pat_11ABCDEFG_tokenThatMustNotLeak"
	url, posts := fakeGitHubHook(t, token)
	b.getenv = b.withEnv(map[string]string{"GITHUB_TOKEN": token})
	args := []string{"catchup", "github", "--repo", "acme/shop", "--hook", "7", "--since", "24h", "--api-url", url}

	stdout, stderr, err := b.hookctl(t, append(args, "--dry-run")...)
	require.NoError(t, err, stderr)
	require.Contains(t, stdout, "github hook 7 since ")
	require.Contains(t, stdout, "deliveries listed 2, events failed 1, already stored 0, would redeliver (dry run) 1")
	require.Empty(t, posts())

	stdout, stderr, err = b.hookctl(t, args...)
	require.NoError(t, err, stderr)
	require.Contains(t, stdout, "redelivered now 1")
	require.Contains(t, stdout, "58474f00-b361-11eb-836d-0e4f3503ccbe  issues.opened  1")
	require.Equal(t, []string{"/repos/acme/shop/hooks/7/deliveries/1/attempts"}, posts())

	// Once the receiver has the event, it is not asked for again.
	b.addEvent(t, "github", "58474f00-b361-11eb-836d-0e4f3503ccbe", "issues")
	stdout, _, err = b.hookctl(t, args...)
	require.NoError(t, err)
	require.Contains(t, stdout, "already stored 1, redelivered now 0")
	require.Len(t, posts(), 1)
}

func TestCatchupGitHubNeverPrintsTheToken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	url, _ := fakeGitHubHook(t, "ghp_theRightOne")
	const wrong = "ghp_wrongTokenThatMustNotLeak789"
	file := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(file, []byte(wrong+"\n"), 0o600))
	getenv := b.withEnv(map[string]string{"GITHUB_TOKEN_FILE": file})
	for _, extra := range [][]string{{}, {"--json"}} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append([]string{"hookctl", "catchup", "github", "--repo", "acme/shop", "--hook", "7", "--since", "24h", "--api-url", url}, extra...), getenv, &stdout, &stderr)
		require.ErrorContains(t, err, "GitHub answered 401")
		require.NotContains(t, stdout.String()+stderr.String()+err.Error(), wrong)
		require.NotContains(t, stdout.String()+stderr.String()+err.Error(), "MustNotLeak789")
	}
}

func TestCatchupGitHubNeedsOneOwner(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.getenv = b.withEnv(map[string]string{"GITHUB_TOKEN": "ghp_x"})
	_, _, err := b.hookctl(t, "catchup", "github", "--repo", "acme/shop", "--org", "acme", "--hook", "7", "--since", "24h")
	require.ErrorContains(t, err, "either a repository (owner/name) or an organization")
}
