package pg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"batos/internal/store"
)

// unavailableError is an operation not carried out because the database
// could not be reached, or the connection to it was lost first. It
// wraps store.ErrUnavailable.
type unavailableError struct {
	what string // what did not happen: "the commit was not made"
	err  error
}

func (e *unavailableError) Error() string {
	return fmt.Sprintf("%v: %s: %s", store.ErrUnavailable, e.what, reason(e.err))
}

func (e *unavailableError) Unwrap() []error { return []error{store.ErrUnavailable, e.err} }

// unavailable is err, from an operation that did not happen (what says
// which), as its caller reads it: wrapping store.ErrUnavailable if a lost
// connection, or a database that does not answer, caused it. Any other
// error, and one of a caller that gave up, is returned as it is.
func unavailable(ctx context.Context, err error, what string) error {
	if ctx.Err() != nil || !connectionLost(err) {
		return err
	}
	return &unavailableError{what: what, err: err}
}

// connectionLost reports whether err comes from a connection that could
// not be made or was lost, rather than from the server refusing a
// statement.
func connectionLost(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 08 is connection exceptions, 57P0x the server stopping
		// or starting.
		return fatal(pe) || strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P")
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// deadConnection reports whether err is a pooled connection found dead
// (the server closed it, as a restart does) while the server answers
// new ones: the operation is worth trying again on another.
func deadConnection(ctx context.Context, err error) bool {
	var ce *pgconn.ConnectError
	return ctx.Err() == nil && connectionLost(err) && !errors.As(err, &ce)
}

// retryDead runs fn, an operation that may be repeated, again while it
// fails on a pooled connection found dead: after a server restart every
// idle connection of the pool is, and each is only found so when used.
func (db *DB) retryDead(ctx context.Context, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || attempt >= int(db.pool.Config().MaxConns) || !deadConnection(ctx, err) {
			return err
		}
	}
}

// fatal reports whether the server ended the session with pe.
func fatal(pe *pgconn.PgError) bool {
	sev := pe.SeverityUnlocalized
	if sev == "" {
		sev = pe.Severity
	}
	return sev == "FATAL" || sev == "PANIC"
}

// reason is what a driver error says, for a person: the server's own
// message without severity and code, the system's for a network error,
// else the driver's.
func reason(err error) string {
	var pe *pgconn.PgError
	var oe *net.OpError
	var ce *pgconn.ConnectError
	prefix := ""
	if errors.As(err, &ce) {
		prefix = "cannot connect: "
	}
	switch {
	case errors.As(err, &pe):
		return prefix + pe.Message
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		// No socket file, or no one on the port: no server runs there.
		var errno syscall.Errno
		errors.As(err, &errno)
		return prefix + "no server is listening (" + errno.Error() + ")"
	case errors.As(err, &oe) && oe.Err != nil:
		var se *os.SyscallError
		if errors.As(oe.Err, &se) {
			return prefix + se.Err.Error()
		}
		return prefix + oe.Err.Error()
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return prefix + "the server closed the connection"
	case errors.Is(err, pgconn.ErrConnClosed):
		return prefix + "the connection was closed"
	}
	return err.Error()
}
