package handlers

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/hoso-ledger/hoso"
)

// Codes that only exist at the HTTP door, beside those of package hoso.
const (
	EMETHODNOTALLOWED = "method_not_allowed"
	EUNAVAILABLE      = hoso.EUNAVAILABLE
	ETOOMANYREQUESTS  = "too_many_requests"
)

// ErrorStatus is the HTTP status of err: 400 invalid, 401 unauthorized,
// 404 not found, 405 method not allowed, 409 conflict, 413 too large,
// 415 unsupported media type, 503 unavailable, and 500 for anything else.
// It is the only place an error becomes a status.
func ErrorStatus(err error) int {
	switch code := hoso.ErrorCode(err); code {
	case EMETHODNOTALLOWED:
		return http.StatusMethodNotAllowed
	case EUNAVAILABLE:
		return http.StatusServiceUnavailable
	case ETOOMANYREQUESTS:
		return http.StatusTooManyRequests
	default:
		// Shared with the NATS door so both answer the same error alike.
		return hoso.HTTPStatus(code)
	}
}

// Error answers err as the JSON error body with its status. Internal errors
// are logged here, once, and answered with a generic message so that no cause
// leaks to the client.
func (s *Server) Error(w http.ResponseWriter, r *http.Request, err error) {
	status := ErrorStatus(err)
	if status >= http.StatusInternalServerError && status != http.StatusServiceUnavailable {
		s.logger().LogAttrs(r.Context(), slog.LevelError, "http request failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("route", r.Pattern), slog.Any("err", err))
	}
	// A refusal may be a browser's page (a cross-site form posting events
	// is refused 401): the headers of pages, whatever the route.
	setSecurityHeaders(w.Header(), s.TLS)
	s.writeJSON(w, r, status, hoso.NewErrorBody(err))
}

// tooLarge is the error of a body past the limit; it names the limit so the
// sender knows how to split the batch.
func tooLarge(limit int64) error {
	return hoso.Errorf(hoso.ETOOLARGE, "request body is larger than the limit of %s", formatBytes(limit))
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB (%d bytes)", n>>20, n)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB (%d bytes)", n>>10, n)
	}
	return fmt.Sprintf("%d bytes", n)
}

// readError classifies a failed body read: past the limit is 413, anything
// else (a client that hung up or stalled) is the client's fault.
func readError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return tooLarge(tooBig.Limit)
	}
	return hoso.Errorf(hoso.EINVALID, "could not read the request body")
}
