package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"io"
	"net/http"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/hookline/hookline/internal/verify"
)

// serveBare runs the bare ceiling: plain net/http, the receiver's body limit
// and a signature check (stripe-go's webhook.ValidatePayload for Stripe, an
// HMAC-SHA256 for the bank), then 200. No echo, no logging, no envelope
// parsing, no database: what any Go server must spend to take a signed
// event, so that the receiver's own stack shows in the ceiling beside it.
func serveBare(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bare-server", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	bankSecret := fs.String("bank-secret", "", "bank HMAC secret")
	stripeSecret := fs.String("stripe-secret", "", "Stripe webhook secret")
	if err := fs.Parse(args); err != nil {
		return err
	}
	const maxBody = 1 << 20 // the receiver's default MAX_BODY_BYTES
	read := func(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				w.WriteHeader(http.StatusRequestEntityTooLarge)
			} else {
				w.WriteHeader(http.StatusBadRequest)
			}
			return nil, false
		}
		return body, true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/webhooks/stripe", func(w http.ResponseWriter, r *http.Request) {
		body, ok := read(w, r)
		if !ok {
			return
		}
		if err := webhook.ValidatePayload(body, r.Header.Get(verify.StripeHeader), *stripeSecret); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	key := []byte(*bankSecret)
	mux.HandleFunc("POST /api/webhooks/bank", func(w http.ResponseWriter, r *http.Request) {
		body, ok := read(w, r)
		if !ok {
			return
		}
		got, err := hex.DecodeString(r.Header.Get(verify.HMACHeader))
		m := hmac.New(sha256.New, key)
		m.Write(body)
		if err != nil || !hmac.Equal(got, m.Sum(nil)) {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	srv := &http.Server{Addr: *addr, Handler: mux}
	go func() { <-ctx.Done(); _ = srv.Shutdown(context.WithoutCancel(ctx)) }()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
