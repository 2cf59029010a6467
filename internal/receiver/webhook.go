package receiver

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/tidwall/gjson"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/hookline/hookline/internal/envelope"
	"github.com/hookline/hookline/internal/inbox"
	"github.com/hookline/hookline/internal/logging"
	"github.com/hookline/hookline/internal/verify"
)

// receivedJSON is the body of every 200: {"received":true}, as echo's
// JSON encoder writes it, newline included.
const receivedJSON = "{\"received\":true}\n"

// The answers senders see, in one style: a sentence without a final stop,
// starting with a capital (httpserver.ErrorHandler enforces the capital on
// messages from elsewhere). The signature message is the same whatever
// failed, so a forger learns nothing from it.
const (
	msgUnknownSource    = "Unknown source"
	msgUnreadable       = "The request body could not be read"
	msgInvalidSignature = "Invalid signature"
	msgUnavailable      = "The event could not be stored; retry later"
	msgShed             = "Too many events from this source; retry later"
	msgIPDenied         = "This address may not send events to this source"
	msgEncoding         = "Content-Encoding is not supported: send the body uncompressed, as signed"
	msgReadTimeout      = "The request body was not received in time"
	msgBusy             = "The receiver is holding too many bodies; retry later"
	msgTypeRefused      = "This source does not accept events of this type"
)

// answerWindow is the time a request has to write its answer, on top of
// the ingest transaction's limit.
const answerWindow = 5 * time.Second

// handleWebhook serves POST /api/webhooks/:source. In order: refuse what
// needs no body (an unknown source, an address outside allow_ips, a shed
// source, a compressed body), read the bounded body, verify its signature
// over the raw bytes, parse the envelope, then store and enqueue in one
// transaction. It answers 200 only after that transaction has committed.
func handleWebhook(logger *slog.Logger, sources []Source, ing Ingester, opts Options) echo.HandlerFunc {
	byName := make(map[string]Source, len(sources))
	for _, s := range sources {
		if s.Envelope.IsZero() {
			s.Envelope = envelope.Default
		}
		byName[s.Name] = s
	}
	retryAfter := strconv.Itoa(max(1, int(opts.RetryAfter.Seconds())))
	// While the database is down every request fails the same way; each
	// still has its request line, with outcome "unavailable", but the
	// error is logged when failures start and then once a minute.
	storeFailures := logging.NewFailures(logger, "could not store event", logging.DefaultEvery)

	return func(c echo.Context) error {
		src, ok := byName[c.Param("source")]
		if !ok {
			c.Set(logOutcome, "unknown_source")
			return echo.NewHTTPError(http.StatusNotFound, msgUnknownSource)
		}
		c.Set(logSource, src.Name)
		// Before anything else about the request: a refused address gets
		// no work done for it, and learns nothing about the source.
		if len(src.AllowIPs) > 0 {
			ip := c.RealIP()
			if !allowed(src.AllowIPs, ip) {
				c.Set(logOutcome, "ip_denied")
				c.Set(logClientIP, ip)
				return echo.NewHTTPError(http.StatusForbidden, msgIPDenied)
			}
		}
		// Before the body is even read: shedding exists to save work.
		if opts.Shed != nil && !opts.Shed.Allow(src.Name) {
			c.Set(logOutcome, "shed")
			c.Response().Header().Set("Retry-After", retryAfter)
			return echo.NewHTTPError(http.StatusTooManyRequests, msgShed)
		}

		// Providers send the body as signed, uncompressed. Decompressing
		// would verify bytes the sender never signed, and a small gzip can
		// expand a thousandfold past the body limit.
		if !identityEncoding(c.Request().Header) {
			c.Set(logOutcome, "unsupported_encoding")
			return echo.NewHTTPError(http.StatusUnsupportedMediaType, msgEncoding)
		}

		limit := cmp.Or(src.MaxBodyBytes, opts.MaxBodyBytes)
		body, release, err := readBody(c.Response(), c.Request(), limit, opts.BodyBudget)
		// The body's memory is given back when the request ends, unless the
		// ingester takes the body, and with it the duty to give it back:
		// a batch may hold it after this request has answered 503.
		handedOver := false
		defer func() {
			if !handedOver {
				release()
			}
		}()
		// The server's WriteTimeout runs from the end of the headers, so a
		// slow body would eat into the time left to answer: a 408 could not
		// be written, and a committed event's 200 could be cut off, making
		// the sender retry what is stored. From here on, the answer gets
		// its own window: the transaction's limit plus time to write.
		_ = http.NewResponseController(c.Response()).SetWriteDeadline(time.Now().Add(opts.IngestTimeout + answerWindow))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				c.Set(logOutcome, "too_large")
				return echo.NewHTTPError(http.StatusRequestEntityTooLarge,
					fmt.Sprintf("The body is larger than the limit of %d bytes", limit))
			}
			if isTimeout(err) {
				c.Set(logOutcome, "read_timeout")
				return echo.NewHTTPError(http.StatusRequestTimeout, msgReadTimeout)
			}
			if errors.Is(err, errBudget) {
				c.Set(logOutcome, "busy")
				c.Response().Header().Set("Retry-After", retryAfter)
				// Without this, Go's server would first read up to 256 KiB
				// of the unread body, holding the answer until the sender
				// sent it or the read timeout passed.
				c.Response().Header().Set(echo.HeaderConnection, "close")
				return echo.NewHTTPError(http.StatusServiceUnavailable, msgBusy)
			}
			c.Set(logOutcome, "read_error")
			return echo.NewHTTPError(http.StatusBadRequest, msgUnreadable)
		}

		span := startSpan(c.Request().Context(), opts.Tracer, SpanVerify)
		err = src.Verifier.Verify(c.Request().Header, body)
		if err != nil {
			c.Set(logOutcome, "bad_signature")
			// The reason is one of a fixed set; the error's text is not
			// recorded, lest it ever quote a header.
			span.SetStatus(codes.Error, "bad signature")
			var ve *verify.Error
			if errors.As(err, &ve) {
				c.Set(logReason, string(ve.Reason))
				c.Set(logSecretsTried, strconv.Itoa(ve.SecretsTried))
				span.SetAttributes(attribute.String("hookline.verify.reason", string(ve.Reason)))
			}
		}
		span.End()
		if err != nil {
			// A digest lets an operator match the failure with the sender's
			// own records without the body ever reaching the logs.
			sum := sha256.Sum256(body)
			c.Set(logBodySHA256, hex.EncodeToString(sum[:]))
			return echo.NewHTTPError(cmp.Or(src.FailureStatus, http.StatusBadRequest), msgInvalidSignature)
		}

		if src.SlackChallenge {
			if challenge, ok := slackChallenge(body); ok {
				c.Set(logOutcome, "url_verification")
				return c.JSON(http.StatusOK, map[string]string{"challenge": challenge})
			}
		}

		span = startSpan(c.Request().Context(), opts.Tracer, SpanEnvelope)
		env, err := src.Envelope.Extract(c.Request().Header, body)
		if err != nil {
			// The message may quote the body: it goes to the sender only.
			span.SetStatus(codes.Error, "malformed")
			span.End()
			c.Set(logOutcome, "malformed")
			return echo.NewHTTPError(http.StatusBadRequest, err.Error())
		}
		span.End()
		c.Set(logEventID, env.ID)
		if opts.Tracer != nil {
			c.Set(logEventType, env.Type) // for the span; boxing it costs an allocation
		}
		if len(src.EventTypes) > 0 && !src.EventTypes[env.Type] {
			c.Set(logOutcome, "type_refused")
			return echo.NewHTTPError(http.StatusBadRequest, msgTypeRefused)
		}

		ev := inbox.NewEvent{
			Source:     src.Name,
			EventID:    env.ID,
			Type:       env.Type,
			APIVersion: env.APIVersion,
			Payload:    body,
			Headers:    keptHeaders(c.Request().Header, src.KeepHeaders),
			Time:       env.ClampTime(time.Now()),
			Object:     env.Object,
			ReplayKey:  src.ReplayGuard.key(env.Type, body),
			Release:    release,
		}
		ctx, cancel := context.WithTimeout(c.Request().Context(), opts.IngestTimeout)
		defer cancel()
		handedOver = true
		outcome, err := ing.Ingest(ctx, ev)
		if err != nil {
			c.Set(logOutcome, "unavailable")
			storeFailures.Fail(err, "source", src.Name, "event_id", env.ID)
			c.Response().Header().Set("Retry-After", retryAfter)
			return echo.NewHTTPError(http.StatusServiceUnavailable, msgUnavailable)
		}
		storeFailures.OK()
		c.Set(logOutcome, outcome.String())
		// The bytes c.JSON would write, without encoding/json's reflection
		// on every acknowledgement; a query string may ask echo for
		// indented JSON (?pretty), so that case still goes through it.
		if c.Request().URL.RawQuery == "" {
			return c.JSONBlob(http.StatusOK, []byte(receivedJSON))
		}
		return c.JSON(http.StatusOK, map[string]bool{"received": true})
	}
}

// allowed reports whether ip, as the IP extractor gave it, is inside one of
// the networks. An address that does not parse is never allowed.
func allowed(nets []netip.Prefix, ip string) bool {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	addr = addr.Unmap() // ::ffff:192.0.2.1 is 192.0.2.1
	for _, n := range nets {
		if n.Contains(addr) {
			return true
		}
	}
	return false
}

// identityEncoding reports whether the body is sent as is: no
// Content-Encoding header, or only "identity".
func identityEncoding(h http.Header) bool {
	for _, v := range h.Values("Content-Encoding") {
		for _, enc := range strings.Split(v, ",") {
			if enc = strings.TrimSpace(enc); enc != "" && !strings.EqualFold(enc, "identity") {
				return false
			}
		}
	}
	return true
}

// isTimeout reports whether reading the body failed because the server's
// ReadTimeout passed: a client sending too slowly.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// keptHeaders returns the values of the named headers that the request
// has; nil, stored as {}, when the source keeps none.
func keptHeaders(h http.Header, names []string) map[string]string {
	if len(names) == 0 {
		return nil
	}
	out := make(map[string]string, len(names))
	for _, name := range names {
		if v := h.Get(name); v != "" {
			out[name] = v
		}
	}
	return out
}

// slackChallenge returns the challenge of Slack's url_verification request,
// which Slack sends (signed) when an endpoint is configured, and which must
// be echoed back rather than stored.
func slackChallenge(body []byte) (string, bool) {
	r := gjson.GetManyBytes(body, "type", "challenge")
	if r[0].Str != "url_verification" || r[1].Type != gjson.String {
		return "", false
	}
	return r[1].Str, true
}
