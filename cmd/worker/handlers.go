package main

import (
	"github.com/hookline/hookline/hooklinetype"
	"github.com/hookline/hookline/internal/balances"
)

// registerHandlers is where business logic plugs in: register a Handler for
// each (source, event type) you process. Events with no handler are
// completed without effect.
//
// The example handlers keep account_balances; remove balances.Register and
// add your own, for example:
//
//	mux.RegisterFunc("stripe", "invoice.paid", billing.InvoicePaid)
func registerHandlers(mux *hooklinetype.Mux) {
	balances.Register(mux)
}
