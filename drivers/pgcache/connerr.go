package pgcache

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// shortConnectError shortens pgx's connection errors to what failed. pgx's message names
// every attempt it made, each with its whole chain of causes: with the default
// sslmode=prefer, a server that refuses the connection is reported twice (TLS, then
// plain). The short message keeps, for each address, the last attempt's innermost cause
// ("connect to 127.0.0.1:5432 (user=app database=app): connection refused"); the error
// still wraps pgx's, so errors.As finds the *pgconn.ConnectError and errors.Is its causes.
// Any other error is returned as it is.
func shortConnectError(err error) error {
	var ce *pgconn.ConnectError
	if err == nil || !errors.As(err, &ce) {
		return err
	}
	var attempts []error
	switch inner := ce.Unwrap().(type) {
	case interface{ Unwrap() []error }:
		attempts = inner.Unwrap()
	default:
		attempts = []error{inner}
	}
	var order []string
	last := map[string]string{}
	for _, a := range attempts {
		addr, _, found := strings.Cut(a.Error(), " (")
		if !found {
			addr = ""
		}
		if _, seen := last[addr]; !seen {
			order = append(order, addr)
		}
		last[addr] = innermost(a).Error()
	}
	parts := make([]string, len(order))
	for i, addr := range order {
		parts[i] = last[addr]
		if addr != "" {
			parts[i] = addr + ": " + last[addr]
		}
	}
	who := ""
	if ce.Config != nil {
		who = fmt.Sprintf(" (user=%s database=%s)", ce.Config.User, ce.Config.Database)
	}
	short := "connect" + who + ": " + strings.Join(parts, "; ")
	if len(order) == 1 && order[0] != "" {
		short = "connect to " + order[0] + who + ": " + last[order[0]]
	}
	return &shortError{msg: strings.Replace(err.Error(), ce.Error(), short, 1), err: err}
}

// innermost is the last error of err's chain, or the server's error on the way there (a
// *pgconn.PgError says what the server refused: a password, a database).
func innermost(err error) error {
	for {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return pe
		}
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

// shortError is err with a shorter message.
type shortError struct {
	msg string
	err error
}

func (e *shortError) Error() string { return e.msg }
func (e *shortError) Unwrap() error { return e.err }
