package hoso

import (
	"errors"
	"fmt"
)

// Error codes. Adapters wrap their causes in an *Error carrying one of these;
// handlers translate the code once, to an HTTP status or a NATS answer.
const (
	EINVALID      = "invalid"
	ECONFLICT     = "conflict"
	ENOTFOUND     = "not_found"
	EUNAUTHORIZED = "unauthorized"
	EFORBIDDEN    = "forbidden"
	ETOOLARGE     = "too_large"
	EUNSUPPORTED  = "unsupported_media_type"
	EUNAVAILABLE  = "unavailable" // retry as it is: the ledger cannot store now (storage full, stream not answering)
	EINTERNAL     = "internal"
)

// Error is an application error: a code a client can act on, a message a
// person can read, and, for invalid input, the field that was wrong.
type Error struct {
	Code    string
	Message string
	Field   string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ForbiddenErrorf returns an EFORBIDDEN *Error naming the parameter or field
// whose value lies outside the principal's scope.
func ForbiddenErrorf(field, format string, args ...any) *Error {
	return &Error{Code: EFORBIDDEN, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// FieldErrorf returns an EINVALID *Error naming the offending field.
func FieldErrorf(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first *Error in err's chain, or a
// generic message that leaks nothing of an internal error.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// HTTPStatus is the HTTP status of an error code. Both doors use it: the
// HTTP handlers as the response status, the NATS service in its error header.
func HTTPStatus(code string) int {
	switch code {
	case "":
		return 200
	case EINVALID:
		return 400
	case EUNAUTHORIZED:
		return 401
	case EFORBIDDEN:
		return 403
	case ENOTFOUND:
		return 404
	case ECONFLICT:
		return 409
	case ETOOLARGE:
		return 413
	case EUNSUPPORTED:
		return 415
	case EUNAVAILABLE:
		return 503
	}
	return 500
}
