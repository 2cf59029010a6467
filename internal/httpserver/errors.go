package httpserver

import (
	"log/slog"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
)

// ErrorHandler answers every error of an echo server as {"error": message},
// in the one style of Hookline's error bodies: a sentence that starts with
// a capital and has no final stop. Echo's own messages ("Method Not
// Allowed") and lower-case ones ("event id is missing") are made into
// sentences. Messages of errors that are not *echo.HTTPError stay
// internal: they are logged, and the answer is "Internal error".
func ErrorHandler(logger *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		code, msg := http.StatusInternalServerError, "Internal error"
		if he, ok := err.(*echo.HTTPError); ok {
			code = he.Code
			s, ok := he.Message.(string)
			if !ok || s == http.StatusText(code) {
				// "Method Not Allowed" → "Method not allowed"
				s = strings.ToLower(http.StatusText(code))
			}
			msg = Sentence(s)
		} else {
			logger.Error("unhandled error", "error", err)
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(code)
			return
		}
		_ = c.JSON(code, map[string]string{"error": msg})
	}
}

// Sentence makes msg an error body's sentence: its first letter a capital,
// and no final stop.
func Sentence(msg string) string {
	msg = strings.TrimRight(strings.TrimSpace(msg), ".")
	if msg == "" {
		return msg
	}
	r, n := utf8.DecodeRuneInString(msg)
	return string(unicode.ToUpper(r)) + msg[n:]
}
