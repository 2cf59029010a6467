package hookline

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/health"
	"github.com/hookline/hookline/internal/metrics"
	"github.com/hookline/hookline/internal/pgtest"
	"github.com/hookline/hookline/internal/schema"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	uiUser     = "oncall"
	uiPassword = "correct horse battery staple"
	uiToken    = "tok_0123456789abcdef"
)

// adminServer serves newAdmin over real HTTP, with a started River UI on a
// fresh database guarded by auth.
func adminServer(t *testing.T, auth uiAuth) string {
	t.Helper()
	db := pgtest.NewDB(t)
	logger := slog.New(slog.DiscardHandler)
	rc, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{Logger: logger})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ui, err := newRiverUI(ctx, rc, logger)
	require.NoError(t, err)
	reg := metrics.NewRegistry()
	metrics.NewWorker(reg, "process_event").SetConcurrencyLimit(50)
	srv := httptest.NewServer(newAdmin(admin{
		db: db.Pool, ready: []health.Check{schema.NewChecker(db.Pool, logger).Check},
		metrics: metrics.Handler(reg, logger), riverUI: ui, auth: auth,
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

type answer struct {
	status int
	header http.Header
	body   string
}

func request(t *testing.T, method, url string, header http.Header) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	req.Header = header
	if req.Header == nil {
		req.Header = http.Header{}
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func basic(user, pass string) http.Header {
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth(user, pass)
	return r.Header
}

func bearer(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

func TestRiverUIIsNotFoundWhenNoCredentialIsConfigured(t *testing.T) {
	t.Parallel()
	url := adminServer(t, uiAuth{})
	for _, path := range []string{"/riverui", "/riverui/", "/riverui/api/states"} {
		require.Equal(t, http.StatusNotFound, request(t, http.MethodGet, url+path, nil).status, path)
		require.Equal(t, http.StatusNotFound, request(t, http.MethodGet, url+path, basic("", "")).status, path)
	}
}

func TestRiverUIAnswers401WithoutTheRightCredential(t *testing.T) {
	t.Parallel()
	url := adminServer(t, uiAuth{username: uiUser, password: uiPassword, token: uiToken})
	for name, header := range map[string]http.Header{
		"none":              nil,
		"wrong password":    basic(uiUser, "wrong"),
		"wrong username":    basic("root", uiPassword),
		"empty":             basic("", ""),
		"wrong token":       bearer("tok_wrong"),
		"token as basic":    basic(uiToken, ""),
		"password as token": bearer(uiPassword),
	} {
		for _, path := range []string{"/riverui/", "/riverui/api/states"} {
			a := request(t, http.MethodGet, url+path, header)
			require.Equal(t, http.StatusUnauthorized, a.status, "%s %s", name, path)
			require.Contains(t, a.header.Values("WWW-Authenticate"), `Basic realm="hookline"`, name)
		}
	}
}

func TestRiverUIServesWithTheRightBasicAuthOrBearerToken(t *testing.T) {
	t.Parallel()
	url := adminServer(t, uiAuth{username: uiUser, password: uiPassword, token: uiToken})
	for name, header := range map[string]http.Header{
		"basic":            basic(uiUser, uiPassword),
		"bearer":           bearer(uiToken),
		"bearer, any case": {"Authorization": {"bearer " + uiToken}},
	} {
		page := request(t, http.MethodGet, url+"/riverui/", header)
		require.Equal(t, http.StatusOK, page.status, name)
		require.Contains(t, page.body, "<html", name)
		api := request(t, http.MethodGet, url+"/riverui/api/states", header)
		require.Equal(t, http.StatusOK, api.status, name)
		require.Contains(t, api.body, `"available"`, name)
	}
}

func TestRiverUIWithOnlyATokenRejectsBasicAuth(t *testing.T) {
	t.Parallel()
	url := adminServer(t, uiAuth{token: uiToken})
	a := request(t, http.MethodGet, url+"/riverui/", basic("", uiToken))
	require.Equal(t, http.StatusUnauthorized, a.status)
	require.Equal(t, []string{`Bearer realm="hookline"`}, a.header.Values("WWW-Authenticate"),
		"a browser must not be offered a basic-auth prompt that cannot succeed")
	require.Equal(t, http.StatusOK, request(t, http.MethodGet, url+"/riverui/", bearer(uiToken)).status)
}

func TestRiverUIRejectsCrossOriginWritesEvenWithCredentials(t *testing.T) {
	t.Parallel()
	url := adminServer(t, uiAuth{username: uiUser, password: uiPassword})
	header := basic(uiUser, uiPassword)
	header.Set("Sec-Fetch-Site", "cross-site")
	require.Equal(t, http.StatusForbidden, request(t, http.MethodPost, url+"/riverui/api/jobs/cancel", header).status)
}

func TestAdminServesMetricsAndProbes(t *testing.T) {
	t.Parallel()
	url := adminServer(t, uiAuth{})
	m := request(t, http.MethodGet, url+"/metrics", nil)
	require.Equal(t, http.StatusOK, m.status)
	require.Contains(t, m.body, "hookline_worker_concurrency_limit 50\n")
	require.Contains(t, m.body, `hookline_worker_jobs_total{kind="process_event",outcome="completed"} 0`+"\n")
	require.Equal(t, http.StatusOK, request(t, http.MethodGet, url+"/healthz", nil).status)
	require.Equal(t, http.StatusOK, request(t, http.MethodGet, url+"/readyz", nil).status)
}

// requireErrorBody checks that a is an error in the one style of every
// Hookline error body: {"error": a sentence with a capital and no final
// stop}.
func requireErrorBody(t *testing.T, a answer, status int, msg string) {
	t.Helper()
	require.Equal(t, status, a.status, a.body)
	require.Equal(t, "application/json", strings.TrimSuffix(a.header.Get("Content-Type"), "; charset=UTF-8"), a.body)
	var got map[string]string
	require.NoError(t, json.Unmarshal([]byte(a.body), &got), a.body)
	require.Len(t, got, 1, a.body)
	require.Contains(t, got["error"], msg, a.body)
	require.Regexp(t, `^[A-Z].*[^.]$`, got["error"], "error messages are sentences with a capital and no final stop")
}

func TestAdminErrorBodiesHaveTheReceiversStyle(t *testing.T) {
	t.Parallel()
	url := adminServer(t, uiAuth{username: uiUser, password: uiPassword})
	requireErrorBody(t, request(t, http.MethodGet, url+"/nowhere", nil), http.StatusNotFound, "Not found")
	requireErrorBody(t, request(t, http.MethodPost, url+"/healthz", nil), http.StatusMethodNotAllowed, "Method not allowed")
	requireErrorBody(t, request(t, http.MethodGet, url+"/riverui/", basic(uiUser, "wrong")), http.StatusUnauthorized, "credentials")
	header := basic(uiUser, uiPassword)
	header.Set("Sec-Fetch-Site", "cross-site")
	requireErrorBody(t, request(t, http.MethodPost, url+"/riverui/api/jobs/cancel", header), http.StatusForbidden, "Cross-origin")
}

func TestAdminReadyzAnswers503WithTheFixOnAnUnmigratedDatabase(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmptyDB(t)
	srv := httptest.NewServer(newAdmin(admin{db: db.Pool, ready: []health.Check{schema.NewChecker(db.Pool, slog.New(slog.DiscardHandler)).Check}}))
	t.Cleanup(srv.Close)
	a := request(t, http.MethodGet, srv.URL+"/readyz", nil)
	requireErrorBody(t, a, http.StatusServiceUnavailable, "Database is not migrated: River migrations 1-")
	require.Contains(t, a.body, "run `hookctl migrate`")
	require.Equal(t, http.StatusOK, request(t, http.MethodGet, srv.URL+"/healthz", nil).status, "liveness does not depend on the database")
}
