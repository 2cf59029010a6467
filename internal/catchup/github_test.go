package catchup_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/catchup"
	"github.com/hookline/hookline/internal/inbox"
)

// fakeGitHub serves a repository hook's deliveries as GitHub documents
// them (docs.github.com/rest/webhooks/repo-deliveries): GET
// .../deliveries, newest first, paginated by a cursor in the Link header;
// POST .../deliveries/{id}/attempts answers 202.
type fakeGitHub struct {
	token      string
	deliveries []catchup.Delivery // newest first

	mu          sync.Mutex
	redelivered []int64
	requests    int
	// fail, if set, answers request n (1, 2, …) instead: a status and
	// headers, or 0 to serve it.
	fail func(n int, r *http.Request) (int, http.Header)
}

func (f *fakeGitHub) start(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	return srv.URL
}

func (f *fakeGitHub) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests++
	n, fail := f.requests, f.fail
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	msg := func(status int, m string) {
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"message":%q,"documentation_url":"https://docs.github.com/rest"}`, m)
	}
	if r.Header.Get("Authorization") != "Bearer "+f.token || r.Header.Get("X-GitHub-Api-Version") != "2022-11-28" {
		msg(http.StatusUnauthorized, "Bad credentials: "+r.Header.Get("Authorization"))
		return
	}
	if fail != nil {
		if status, h := fail(n, r); status != 0 {
			for k, v := range h {
				w.Header()[k] = v
			}
			msg(status, "fault injected")
			return
		}
	}
	const prefix = "/repos/acme/shop/hooks/42/deliveries"
	switch {
	case r.Method == http.MethodGet && r.URL.Path == prefix:
		per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
		start, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Query().Get("cursor"), "v1_"))
		end := min(start+per, len(f.deliveries))
		if end < len(f.deliveries) {
			w.Header().Set("Link", fmt.Sprintf(`<https://evil.example/repos/acme/shop/hooks/42/deliveries?per_page=%d&cursor=v1_%d>; rel="next"`, per, end))
		}
		json.NewEncoder(w).Encode(f.deliveries[start:end])
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, prefix+"/") && strings.HasSuffix(r.URL.Path, "/attempts"):
		id, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, prefix+"/"), "/attempts"), 10, 64)
		f.mu.Lock()
		f.redelivered = append(f.redelivered, id)
		f.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte(`{}`))
	default:
		msg(http.StatusNotFound, "Not Found")
	}
}

// newFakeGitHub lists, newest first: deliveries 1 to 12 an hour apart,
// GUID g-i. Odd ones failed (502); g-3 was redelivered with success since
// (delivery 103), g-5 failed again on redelivery (105).
func newFakeGitHub() *fakeGitHub {
	f := &fakeGitHub{token: "ghp_fakeTokenThatMustNotLeak123"}
	now := time.Now().UTC().Truncate(time.Second)
	add := func(id int64, guid string, at time.Time, code int, redelivery bool) {
		f.deliveries = append(f.deliveries, catchup.Delivery{ID: id, GUID: guid, DeliveredAt: at, Redelivery: redelivery,
			Status: http.StatusText(code), StatusCode: code, Event: "push"})
	}
	add(105, "g-5", now.Add(-10*time.Minute), 502, true)
	add(103, "g-3", now.Add(-20*time.Minute), 200, true)
	for i := 1; i <= 12; i++ {
		code := 200
		if i%2 == 1 {
			code = 502
		}
		add(int64(i), fmt.Sprintf("g-%d", i), now.Add(-time.Duration(i)*time.Hour), code, false)
	}
	return f
}

func githubClient(t *testing.T, f *fakeGitHub, url string, since time.Duration) *catchup.GitHub {
	t.Helper()
	g, err := catchup.NewGitHub(catchup.GitHubOptions{Token: f.token, URL: url, Repo: "acme/shop", HookID: 42, Since: time.Now().Add(-since),
		Requests: catchup.Requests{PageSize: 4, Backoff: func(int) time.Duration { return time.Millisecond }}})
	require.NoError(t, err)
	return g
}

func TestGitHubCatchupRedeliversEachFailedEventOnceOldestFirst(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := newFakeGitHub()
	url := f.start(t)
	// g-9 failed at GitHub's end, but the receiver had stored it.
	_, err := b.webhook.Ingest(context.Background(), inbox.NewEvent{Source: "github", EventID: "g-9", Type: "push", Payload: []byte(`{}`)})
	require.NoError(t, err)

	// Deliveries of the last 10.5 hours: 1 to 10, and the two redeliveries.
	sum, err := catchup.RedeliverGitHub(context.Background(), githubClient(t, f, url, 10*time.Hour+30*time.Minute), b.db.Pool, "github", false)
	require.NoError(t, err)
	require.Equal(t, 12, sum.Listed)
	// g-1, g-5, g-7, g-9 failed; g-3 succeeded on redelivery.
	require.Equal(t, 4, sum.Failed)
	require.Equal(t, 1, sum.AlreadyStored)
	require.Empty(t, sum.Errors)
	// g-7, then g-5 (its latest delivery, 105), then g-1.
	require.Equal(t, []int64{7, 105, 1}, f.redelivered)
	require.Equal(t, []int64{7, 105, 1}, ids(sum.Redelivered))
}

func TestGitHubCatchupDryRunRedeliversNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := newFakeGitHub()
	sum, err := catchup.RedeliverGitHub(context.Background(), githubClient(t, f, f.start(t), 24*time.Hour), b.db.Pool, "github", true)
	require.NoError(t, err)
	// g-1, 5, 7, 9 and 11, oldest first; g-5 once, by its latest delivery.
	require.Equal(t, []int64{11, 9, 7, 105, 1}, ids(sum.Redelivered))
	require.Empty(t, f.redelivered)
}

func TestGitHubCatchupWaitsOnRateLimitsAndReportsRefusedRedeliveries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := newFakeGitHub()
	f.fail = func(n int, r *http.Request) (int, http.Header) {
		switch {
		case n == 2: // the second page: GitHub's primary rate limit
			return http.StatusForbidden, http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {strconv.FormatInt(time.Now().Unix(), 10)}}
		case n == 3: // and then a secondary one
			return http.StatusTooManyRequests, http.Header{"Retry-After": {"0"}}
		case r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/105/"):
			return http.StatusUnprocessableEntity, nil // too old to redeliver, say
		}
		return 0, nil
	}
	var retries int
	g, err := catchup.NewGitHub(catchup.GitHubOptions{Token: f.token, URL: f.start(t), Repo: "acme/shop", HookID: 42, Since: time.Now().Add(-24 * time.Hour),
		Requests: catchup.Requests{PageSize: 4, Backoff: func(int) time.Duration { return time.Millisecond }, OnRetry: func(int, time.Duration, error) { retries++ }}})
	require.NoError(t, err)
	sum, err := catchup.RedeliverGitHub(context.Background(), g, b.db.Pool, "github", false)
	require.NoError(t, err)
	require.Equal(t, 2, retries)
	require.Equal(t, 14, sum.Listed)
	require.Len(t, sum.Errors, 1)
	require.Equal(t, int64(105), sum.Errors[0].Delivery.ID)
	require.Contains(t, sum.Errors[0].Error, "GitHub answered 422")
	require.Equal(t, []int64{11, 9, 7, 1}, f.redelivered)
}

func TestGitHubCatchupNeverSendsOrShowsTheTokenElsewhere(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := newFakeGitHub()
	url := f.start(t)
	g, err := catchup.NewGitHub(catchup.GitHubOptions{Token: "ghp_wrongTokenThatMustNotLeak456", URL: url, Repo: "acme/shop", HookID: 42, Since: time.Now().Add(-time.Hour)})
	require.NoError(t, err)
	_, err = catchup.RedeliverGitHub(context.Background(), g, b.db.Pool, "github", false)
	// The fake, unlike GitHub, quotes the credentials it was given.
	require.ErrorContains(t, err, "GitHub answered 401")
	require.NotContains(t, err.Error(), "ghp_wrongTokenThatMustNotLeak456")
}

func ids(ds []catchup.Delivery) []int64 {
	out := make([]int64, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}
