package main

import (
	"github.com/hookline/hookline/internal/balances"
	"github.com/hookline/hookline/internal/dispatch"
)

// registerHandlers is where business logic plugs in: register a Handler for
// each (source, event type) you process. Events with no handler are
// completed without effect.
//
// The example handlers keep account_balances; remove balances.Register and
// add your own, for example:
//
//	mux.HandleFunc("stripe", "invoice.paid", billing.InvoicePaid)
func registerHandlers(mux *dispatch.Mux) {
	balances.Register(mux)
}
