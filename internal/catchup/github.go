package catchup

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookline/hookline/internal/inbox"
)

// GitHub's catch-up uses plain net/http rather than google/go-github: it
// needs two endpoints (list a hook's deliveries, redeliver one), whose
// shapes are small and documented, while go-github is a large module that
// changes major version several times a year. The requests follow
// https://docs.github.com/rest/webhooks/repo-deliveries and
// .../orgs/webhooks (API version 2022-11-28).

// gitHubAPIVersion is the REST API version requested.
const gitHubAPIVersion = "2022-11-28"

// GitHubOptions configure a GitHub client for one hook.
type GitHubOptions struct {
	// Token is a token that may administer the hook's webhooks
	// (repository or organization "Webhooks" read and write). It is sent
	// to the API and nowhere else.
	Token string
	// URL is the API's base URL; empty is https://api.github.com (for
	// GitHub Enterprise Server, https://HOST/api/v3).
	URL string
	// Repo ("owner/name") or Org names the hook's owner; exactly one.
	Repo, Org string
	// HookID is the webhook's id.
	HookID int64
	// Since: deliveries made before it are not looked at.
	Since time.Time
	// Requests: deliveries per page, and retries after a rate limit
	// (429, or 403 with no requests left), a 5xx or a network error.
	Requests
}

// Delivery is one delivery attempt of a hook, as GitHub lists it.
type Delivery struct {
	ID          int64     `json:"id"`
	GUID        string    `json:"guid"`
	DeliveredAt time.Time `json:"delivered_at"`
	Redelivery  bool      `json:"redelivery"`
	Status      string    `json:"status"`
	StatusCode  int       `json:"status_code"`
	Event       string    `json:"event"`
	Action      string    `json:"action"`
}

// ok reports whether the receiver answered 2xx.
func (d Delivery) ok() bool { return d.StatusCode >= 200 && d.StatusCode < 300 }

// GitHub lists a hook's deliveries and asks for redeliveries.
type GitHub struct {
	opts GitHubOptions
	base *url.URL
	path string // /repos/o/r/hooks/1 or /orgs/o/hooks/1
}

var repoRe = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)
var orgRe = regexp.MustCompile(`^[A-Za-z0-9-]+$`)

// NewGitHub returns a client for the hook opts name.
func NewGitHub(opts GitHubOptions) (*GitHub, error) {
	switch {
	case opts.Token == "":
		return nil, errors.New("github: no token (set GITHUB_TOKEN or GITHUB_TOKEN_FILE)")
	case (opts.Repo == "") == (opts.Org == ""):
		return nil, errors.New("github: give either a repository (owner/name) or an organization")
	case opts.Repo != "" && !repoRe.MatchString(opts.Repo):
		return nil, fmt.Errorf("github: %q is not owner/name", opts.Repo)
	case opts.Org != "" && !orgRe.MatchString(opts.Org):
		return nil, fmt.Errorf("github: %q is not an organization name", opts.Org)
	case opts.HookID <= 0:
		return nil, errors.New("github: no hook id")
	case opts.Since.IsZero():
		return nil, errors.New("github: no start time")
	}
	var err error
	if opts.Requests, err = opts.Requests.withDefaults(); err != nil {
		return nil, fmt.Errorf("github: %w", err)
	}
	base, err := url.Parse(cmp.Or(opts.URL, "https://api.github.com"))
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("github: API URL %q is not a URL", opts.URL)
	}
	g := &GitHub{opts: opts, base: base}
	if opts.Repo != "" {
		g.path = fmt.Sprintf("/repos/%s/hooks/%d", opts.Repo, opts.HookID)
	} else {
		g.path = fmt.Sprintf("/orgs/%s/hooks/%d", opts.Org, opts.HookID)
	}
	return g, nil
}

// apiError is a GitHub answer other than the one expected.
type apiError struct {
	Status     int
	Message    string
	retryAfter time.Duration // from Retry-After or X-RateLimit-Reset; 0 if neither
	limited    bool
}

func (e *apiError) Error() string {
	return fmt.Sprintf("GitHub answered %d: %s", e.Status, e.Message)
}

// do sends one request, retrying rate limits and server errors, and
// returns the answer's body and headers for a status in want.
func (g *GitHub) do(ctx context.Context, method, path string, query url.Values, want int) ([]byte, http.Header, error) {
	type answer struct {
		body []byte
		h    http.Header
	}
	a, err := retry(ctx, g.opts.MaxRetries, g.opts.OnRetry, g.opts.Token, func() (answer, error) {
		body, h, err := g.once(ctx, method, path, query, want)
		return answer{body, h}, err
	}, g.retryAfter)
	return a.body, a.h, err
}

// retryAfter is as StripeLister.retryAfter, for GitHub's answers: a 403
// counts as a rate limit when GitHub says it is one.
func (g *GitHub) retryAfter(err error, n int) (time.Duration, bool) {
	var ae *apiError
	if !errors.As(err, &ae) {
		return g.opts.Backoff(n), true // a network error
	}
	if !ae.limited && ae.Status < 500 {
		return 0, false
	}
	if ae.retryAfter > 0 {
		return min(ae.retryAfter, 2*time.Minute), true
	}
	return g.opts.Backoff(n), true
}

func (g *GitHub) once(ctx context.Context, method, path string, query url.Values, want int) ([]byte, http.Header, error) {
	u := *g.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("Authorization", "Bearer "+g.opts.Token)
	req.Header.Set("X-GitHub-Api-Version", gitHubAPIVersion)
	resp, err := g.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	// A page of 100 deliveries is about 40 KB; anything far larger is not
	// what was asked for.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode == want {
		return body, resp.Header, nil
	}
	ae := &apiError{Status: resp.StatusCode}
	var msg struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &msg) == nil && msg.Message != "" {
		ae.Message = oneLine(msg.Message)
	} else {
		ae.Message = http.StatusText(resp.StatusCode)
	}
	// GitHub's rate limits: 429, or 403 with no requests left, with
	// Retry-After (secondary limits) or X-RateLimit-Reset (primary).
	ae.limited = resp.StatusCode == http.StatusTooManyRequests ||
		resp.StatusCode == http.StatusForbidden && (resp.Header.Get("X-RateLimit-Remaining") == "0" || resp.Header.Get("Retry-After") != "")
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		ae.retryAfter = time.Duration(s) * time.Second
	} else if reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil && ae.limited {
		ae.retryAfter = max(time.Until(time.Unix(reset, 0)), time.Second)
	}
	return nil, nil, ae
}

// nextCursor reads the cursor of the rel="next" link. Only the cursor is
// taken: the link's host is not followed, so that an answer cannot send
// the token elsewhere.
func nextCursor(h http.Header) string {
	for _, link := range strings.Split(h.Get("Link"), ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(link), ";")
		if !ok || !strings.Contains(params, `rel="next"`) {
			continue
		}
		u, err := url.Parse(strings.Trim(strings.TrimSpace(target), "<>"))
		if err != nil {
			return ""
		}
		return u.Query().Get("cursor")
	}
	return ""
}

// Failed lists the hook's deliveries since opts.Since, newest first, and
// returns how many it listed and, for each event (GUID) none of whose
// deliveries got a 2xx, its latest delivery: newest first by when the
// event was first sent.
func (g *GitHub) Failed(ctx context.Context) (int, []Delivery, error) {
	listed := 0
	latest := map[string]Delivery{}
	first := map[string]time.Time{}
	succeeded := map[string]bool{}
	cursor := ""
	for {
		q := url.Values{"per_page": {strconv.Itoa(g.opts.PageSize)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		body, h, err := g.do(ctx, http.MethodGet, g.path+"/deliveries", q, http.StatusOK)
		if err != nil {
			return listed, nil, fmt.Errorf("list deliveries of hook %d: %w", g.opts.HookID, err)
		}
		var page []Delivery
		if err := json.Unmarshal(body, &page); err != nil {
			return listed, nil, fmt.Errorf("list deliveries of hook %d: read answer: %w", g.opts.HookID, err)
		}
		older := false
		for _, d := range page {
			if d.DeliveredAt.Before(g.opts.Since) {
				older = true
				continue
			}
			listed++
			if d.ok() {
				succeeded[d.GUID] = true
			}
			if prev, seen := latest[d.GUID]; !seen || d.DeliveredAt.After(prev.DeliveredAt) {
				latest[d.GUID] = d
			}
			if f, seen := first[d.GUID]; !seen || d.DeliveredAt.Before(f) {
				first[d.GUID] = d.DeliveredAt
			}
		}
		next := nextCursor(h)
		// Newest first: once a page reaches before Since, the rest is older.
		if older || next == "" || len(page) == 0 {
			break
		}
		if next == cursor {
			return listed, nil, fmt.Errorf("list deliveries of hook %d: the API returned the same page twice", g.opts.HookID)
		}
		cursor = next
	}
	var failed []Delivery
	for guid, d := range latest {
		if !succeeded[guid] {
			failed = append(failed, d)
		}
	}
	// Newest first by when each event was first sent, as GitHub lists.
	slices.SortFunc(failed, func(a, b Delivery) int {
		return cmp.Or(first[b.GUID].Compare(first[a.GUID]), cmp.Compare(a.GUID, b.GUID))
	})
	return listed, failed, nil
}

// Redeliver asks GitHub to deliver delivery id again.
func (g *GitHub) Redeliver(ctx context.Context, id int64) error {
	_, _, err := g.do(ctx, http.MethodPost, fmt.Sprintf("%s/deliveries/%d/attempts", g.path, id), nil, http.StatusAccepted)
	if err != nil {
		return fmt.Errorf("redeliver delivery %d of hook %d: %w", id, g.opts.HookID, err)
	}
	return nil
}

// GitHubSummary counts what a GitHub catch-up did.
type GitHubSummary struct {
	Source string `json:"source"`
	HookID int64  `json:"hook_id"`
	DryRun bool   `json:"dry_run"`
	// Listed are the deliveries since the start; Failed the events none
	// of whose deliveries got a 2xx.
	Listed int `json:"listed"`
	Failed int `json:"failed"`
	// AlreadyStored failed at GitHub's end but are in the inbox (the
	// receiver committed, and its answer came too late).
	AlreadyStored int `json:"already_stored"`
	// Redelivered were asked for again (in a dry run: would be).
	Redelivered []Delivery        `json:"redelivered"`
	Errors      []RedeliveryError `json:"errors"`
}

// RedeliveryError is a redelivery GitHub refused.
type RedeliveryError struct {
	Delivery Delivery `json:"delivery"`
	Error    string   `json:"error"`
}

// RedeliverGitHub asks GitHub to redeliver each event of the hook that
// failed since the start and that the inbox lacks under source. The
// redeliveries come back signed, with their original GUID, through the
// receiver. A refused redelivery is reported and the others go on; the
// error is for a listing or database failure.
func RedeliverGitHub(ctx context.Context, g *GitHub, pool *pgxpool.Pool, source string, dryRun bool) (GitHubSummary, error) {
	sum := GitHubSummary{Source: source, HookID: g.opts.HookID, DryRun: dryRun, Redelivered: []Delivery{}, Errors: []RedeliveryError{}}
	listed, failed, err := g.Failed(ctx)
	sum.Listed, sum.Failed = listed, len(failed)
	if err != nil {
		return sum, err
	}
	keys := make([]inbox.Key, len(failed))
	for i, d := range failed {
		keys[i] = inbox.Key{Source: source, EventID: d.GUID}
	}
	var found map[inbox.Key]bool
	if len(keys) > 0 {
		if found, err = existing(ctx, pool, keys); err != nil {
			return sum, fmt.Errorf("look up failed deliveries in the inbox: %w", err)
		}
	}
	// Oldest first, so that events come back in about the order they
	// were first sent.
	for i := len(failed) - 1; i >= 0; i-- {
		d := failed[i]
		if found[inbox.Key{Source: source, EventID: d.GUID}] {
			sum.AlreadyStored++
			continue
		}
		if !dryRun {
			if err := g.Redeliver(ctx, d.ID); err != nil {
				if ctx.Err() != nil {
					return sum, err
				}
				sum.Errors = append(sum.Errors, RedeliveryError{Delivery: d, Error: err.Error()})
				continue
			}
		}
		sum.Redelivered = append(sum.Redelivered, d)
	}
	return sum, nil
}
