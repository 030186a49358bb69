package hoso_test

import (
	"errors"

	"github.com/hoso-ledger/hoso"
)

func asError(err error, target **hoso.Error) bool { return errors.As(err, target) }

func fieldOf(err error) string {
	var e *hoso.Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
