package catchup

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// Requests are how a catch-up client asks its API for pages, and when it
// asks again. StripeOptions and GitHubOptions embed them.
type Requests struct {
	// PageSize is the items per request, 1 to 100 (the default).
	PageSize int
	// MaxRetries is how many times a request is made again after an
	// error worth retrying, waiting longer each time. Default 6; negative
	// for none.
	MaxRetries int
	// Backoff is the wait before retry n (1, 2, …) when the API does not
	// say how long; default 1s, 2s, 4s … up to 30s, with jitter.
	Backoff func(n int) time.Duration
	// OnRetry, if set, is told of each wait before a retry.
	OnRetry func(n int, wait time.Duration, err error)
	// HTTPClient, if set, sends the requests; default one with a 60s
	// timeout.
	HTTPClient *http.Client
}

// withDefaults checks r's page size and fills in what r leaves unset.
func (r Requests) withDefaults() (Requests, error) {
	if r.PageSize < 0 || r.PageSize > 100 {
		return r, fmt.Errorf("page size %d out of range [1, 100]", r.PageSize)
	}
	if r.PageSize == 0 {
		r.PageSize = 100
	}
	if r.MaxRetries == 0 {
		r.MaxRetries = 6
	}
	if r.Backoff == nil {
		r.Backoff = defaultBackoff
	}
	if r.HTTPClient == nil {
		r.HTTPClient = &http.Client{Timeout: 60 * time.Second}
	}
	return r, nil
}

// retry calls try until it succeeds, until wait says its error is not
// worth another try, until max retries have failed, or until ctx ends.
// wait gives the pause before retry n (1, 2, …), from what the API said or
// else the backoff; onRetry, if set, is told of each pause. secret is cut
// out of every error before wait, onRetry or the caller sees it. Stripe's
// lister and GitHub's client share it, so both give up and report alike.
func retry[T any](ctx context.Context, max int, onRetry func(n int, wait time.Duration, err error), secret string,
	try func() (T, error), wait func(err error, n int) (time.Duration, bool)) (T, error) {
	var zero T
	for n := 0; ; n++ {
		v, err := try()
		if err == nil {
			return v, nil
		}
		err = Redact(err, secret)
		var d time.Duration
		again := !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
		if again {
			d, again = wait(err, n+1)
		}
		if !again || n >= max || ctx.Err() != nil {
			if n > 0 {
				return zero, fmt.Errorf("after %d retries: %w", n, err)
			}
			return zero, err
		}
		if onRetry != nil {
			onRetry(n+1, d, err)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return zero, fmt.Errorf("waiting to retry: %w (last error: %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// defaultBackoff doubles from 1s to 30s, with up to a quarter more at
// random so that several clients spread out.
func defaultBackoff(n int) time.Duration {
	d := min(time.Second<<min(n-1, 5), 30*time.Second)
	return d + rand.N(d/4+1)
}

// redacted is an error whose message has a secret cut out.
type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }

// Redact returns err with every occurrence of secret in its message
// replaced, keeping the chain for errors.As. Stripe masks keys in its own
// messages; this holds for any server, and for errors that quote a URL.
// A nil err stays nil.
func Redact(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return &redacted{msg: strings.ReplaceAll(err.Error(), secret, "[redacted]"), err: err}
}
