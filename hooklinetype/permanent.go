package hooklinetype

import "errors"

// permanentError marks an error that no retry can fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return "permanent: " + e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent wraps err to say that retrying the event cannot help, for
// example because its payload lacks a field the handler needs. The job is
// cancelled at once instead of being retried for weeks; it stays visible in
// River as cancelled, with the error recorded. Permanent(nil) is nil, like
// fmt.Errorf's %w of nothing, so that `return Permanent(err)` after a call
// that succeeded stays a success.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, came from
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
