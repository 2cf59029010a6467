package envelope

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// MaxObjectLen is the longest object key accepted, in bytes.
const MaxObjectLen = 255

// MaxClockSkew is how far past the received time an event time may be
// before ClampTime takes the received time instead.
const MaxClockSkew = 5 * time.Minute

// objectField reads the object key. Providers write some ids as JSON
// numbers (Shopify's id), so a number is taken as its JSON text. A body
// that is not JSON (jsonBody false) has no object in it.
func objectField(header http.Header, body []byte, jsonBody bool, loc Locator) (string, error) {
	if loc.JSON != "" {
		if !jsonBody {
			return "", nil
		}
		r := gjson.GetBytes(body, loc.JSON)
		if r.Type == gjson.Number {
			return r.Raw, nil
		}
		if loc.Signed == nil && loc.Header == "" {
			return jsonField(r, "object", loc, MaxObjectLen) // not field: a second read of the path
		}
	}
	return field(header, body, "object", loc, MaxObjectLen)
}

// timeField reads the event time from the first of locs that is present.
// A body that is not JSON (jsonBody false) has no time in it.
func timeField(header http.Header, body []byte, jsonBody bool, locs []Locator) (time.Time, error) {
	for _, loc := range locs {
		var raw string
		if loc.JSON != "" {
			if !jsonBody {
				continue
			}
			r := gjson.GetBytes(body, loc.JSON)
			switch r.Type {
			case gjson.Null:
				continue
			case gjson.Number, gjson.String:
				raw = r.Str
				if r.Type == gjson.Number {
					raw = r.Raw
				}
			default:
				return time.Time{}, fmt.Errorf("%w: time (%s) must be a number or a string, not %s", ErrMalformed, loc, kind(r))
			}
		} else {
			v, err := field(header, body, "time", loc, 64)
			if err != nil {
				return time.Time{}, err
			}
			raw = v
		}
		if raw == "" {
			continue
		}
		t, err := ParseTime(raw)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: time (%s): %w", ErrMalformed, loc, err)
		}
		return t, nil
	}
	return time.Time{}, nil
}

// The range of event times accepted: a Unix time outside it is more likely
// milliseconds, or a mistake, than a date.
var (
	minTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
)

// ParseTime reads an event time as providers write it: Unix seconds,
// possibly with a fraction (Stripe's created, Slack's event_time, Standard
// Webhooks' webhook-timestamp), or RFC 3339 (Shopify's
// X-Shopify-Triggered-At, a Standard Webhooks body's timestamp). The result
// is in UTC, at microsecond precision, as Postgres stores it, so that the
// times compared in memory and in the database agree.
func ParseTime(s string) (time.Time, error) {
	var t time.Time
	if strings.Trim(s, "0123456789.") == "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) {
			return time.Time{}, fmt.Errorf("%q is not Unix seconds", s)
		}
		sec, frac := math.Modf(f)
		t = time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3)
	} else {
		var err error
		if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return time.Time{}, fmt.Errorf("%q is neither Unix seconds nor RFC 3339", s)
		}
	}
	if t.Before(minTime) || t.After(maxTime) {
		return time.Time{}, fmt.Errorf("%q is not between 2000 and 9999", s)
	}
	return t.UTC().Truncate(time.Microsecond), nil
}

// ClampTime returns the event time to store for an event received at now:
// its own, unless it is zero or later than now by more than MaxClockSkew.
// A time far ahead would make every later event of its object look older,
// and so stale, until that time came; providers' clocks are not that far
// off, so such a time is a mistake or a forgery, and the received time is
// the safer order.
func (e Envelope) ClampTime(now time.Time) time.Time {
	if e.Time.IsZero() || e.Time.After(now.Add(MaxClockSkew)) {
		return now.UTC().Truncate(time.Microsecond)
	}
	return e.Time
}
