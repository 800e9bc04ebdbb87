package command

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"unicode/utf8"

	"batos/internal/catalog"
	"batos/internal/catalog/library"
	"batos/internal/cycle"
	"batos/internal/heartbeat"
	"batos/internal/image"
	"batos/internal/store"
	"batos/internal/vm"
)

// Kind is the class of a command's error, as every transport reports it
// (docs/protocol.md lists them). Clients switch on kinds, never on
// messages.
type Kind string

// The error kinds.
const (
	KindBadRequest     Kind = "bad_request"
	KindUnknownCommand Kind = "unknown_command"
	KindNotFound       Kind = "not_found"
	KindNoMind         Kind = "no_mind"
	KindLimit          Kind = "limit"
	KindConflict       Kind = "conflict"
	KindMethodError    Kind = "method_error"
	KindShuttingDown   Kind = "shutting_down"
	KindCancelled      Kind = "cancelled"
	KindLearningFailed Kind = "learning_failed"
	KindStillLearning  Kind = "still_learning"
	KindCorrupt        Kind = "corrupt"
	KindNoSpace        Kind = "no_space"
	KindReadOnly       Kind = "read_only"
	KindUnavailable    Kind = "unavailable"
	KindOutcomeUnknown Kind = "outcome_unknown"
	KindInternal       Kind = "internal"
)

// Kinds lists every kind, in the order above: the bounded set a metric
// may label errors with.
var Kinds = []Kind{
	KindBadRequest, KindUnknownCommand, KindNotFound, KindNoMind, KindLimit, KindConflict, KindMethodError,
	KindShuttingDown, KindCancelled, KindLearningFailed, KindStillLearning, KindCorrupt, KindNoSpace,
	KindReadOnly, KindUnavailable, KindOutcomeUnknown, KindInternal,
}

// Sentinels of the kinds that have no sentinel lower down.
var (
	// ErrBadRequest: a request's arguments are missing, of the wrong type
	// or out of range.
	ErrBadRequest = errors.New("bad request")
	// ErrUnknownCommand: a transport was asked for a command that does
	// not exist.
	ErrUnknownCommand = errors.New("unknown command")
	// ErrNotFound: a target, transaction or cycle names nothing.
	ErrNotFound = errors.New("not found")
	// ErrShuttingDown: the server stops; the request was not carried out.
	ErrShuttingDown = errors.New("shutting down")
	// ErrCancelled: the caller cancelled the request, or went away, before
	// it finished; what it had not committed was not saved.
	ErrCancelled = errors.New("cancelled")
	// ErrLearningFailed: the cycle learning a send's message failed.
	ErrLearningFailed = errors.New("learning failed")
	// ErrStillLearning: the cycle learning a send's message did not
	// finish within the send's timeout.
	ErrStillLearning = errors.New("still learning")
)

// kindSentinels are, in the order they are tried, the errors that make a
// kind, and the one error (first listed) a kind stands for when it comes
// back from a remote server (Error.Is). Kind limit is not here: it is a
// method's limit, the store's or the catalog's, and stands for none.
var kindSentinels = []struct {
	kind   Kind
	errors []error
}{
	{KindBadRequest, []error{ErrBadRequest, cycle.ErrState, cycle.ErrMission, catalog.ErrEmpty, library.ErrQuery, heartbeat.ErrDecided}},
	{KindLearningFailed, []error{ErrLearningFailed}},
	{KindStillLearning, []error{ErrStillLearning}},
	{KindUnknownCommand, []error{ErrUnknownCommand}},
	{KindNoMind, []error{vm.ErrNoMind}},
	{KindNoSpace, []error{store.ErrNoSpace}},
	{KindCorrupt, []error{store.ErrCorrupt}},
	{KindReadOnly, []error{store.ErrReadOnly}},
	{KindUnavailable, []error{store.ErrUnavailable}},
	{KindOutcomeUnknown, []error{store.ErrOutcomeUnknown}},
	{KindConflict, []error{store.ErrConflict, heartbeat.ErrBusy, heartbeat.ErrReplay, cycle.ErrBaseChanged}},
	{KindNotFound, []error{ErrNotFound, store.ErrNotFound, store.ErrNoTransaction, cycle.ErrNoCycle, image.ErrNoTarget, catalog.ErrNoDocument, heartbeat.ErrNoAudit, heartbeat.ErrNoProposal}},
	{KindShuttingDown, []error{ErrShuttingDown, cycle.ErrClosed}},
	// After shutting_down: a request the stopping server cancelled is
	// shutting_down, one its caller cancelled (the context's own
	// context.Canceled included) is cancelled.
	{KindCancelled, []error{ErrCancelled, context.Canceled}},
}

// KindOf classifies err. A remote server's error keeps the kind it came
// with.
func KindOf(err error) Kind {
	var remote *Error
	var le *LearningError
	var limit *vm.LimitError
	var method *vm.Error
	var undo *store.UndoError
	switch {
	case errors.As(err, &remote):
		return remote.Kind
	case errors.As(err, &undo) && undo.Reason != "":
		// Refused for what the transaction is (it made the root), not
		// for what came after it.
		return KindBadRequest
	case errors.As(err, &undo):
		// Later transactions changed what the undo would restore.
		return KindConflict
	case errors.As(err, &le) && errors.Is(le.Err, cycle.ErrClosed):
		// The cycle stopped with the server: it does not go on here, and
		// resumes with the next one.
		return KindShuttingDown
	case errors.As(err, &le) && errors.Is(le.Err, ErrLearningFailed):
		return KindLearningFailed
	case errors.As(err, &le):
		return KindStillLearning
	case errors.As(err, &limit), errors.Is(err, store.ErrTooLarge), errors.Is(err, catalog.ErrTooLarge):
		return KindLimit
	}
	for _, ks := range kindSentinels {
		for _, s := range ks.errors {
			if errors.Is(err, s) {
				return ks.kind
			}
		}
	}
	if errors.As(err, &method) {
		return KindMethodError
	}
	return KindInternal
}

// CycleOf is the cycle an error is about (a send's unfinished cycle), or
// 0: a client follows that cycle.
func CycleOf(err error) int64 {
	var remote *Error
	var le *LearningError
	var about interface{ CycleID() int64 }
	switch {
	case errors.As(err, &remote):
		return remote.Cycle
	case errors.As(err, &le):
		return le.Cycle
	case errors.As(err, &about):
		// An error of a transport's own about a cycle (a send waiting
		// for one, cancelled).
		return about.CycleID()
	}
	return 0
}

// BlockedBy is, for an undo refused because later transactions changed
// its objects, each object and the transaction that changed it; else nil.
func BlockedBy(err error) map[store.OID]store.TID {
	var remote *Error
	var undo *store.UndoError
	switch {
	case errors.As(err, &remote):
		return remote.Blocked
	case errors.As(err, &undo) && undo.Reason == "":
		return undo.Changed
	}
	return nil
}

// PathOf is the file an error about the store's files names, or "": the
// one a full file system refused, or the damaged one.
func PathOf(err error) string {
	var remote *Error
	var ns *store.NoSpaceError
	var de *store.DamageError
	switch {
	case errors.As(err, &remote):
		return remote.Path
	case errors.As(err, &ns):
		return ns.Path
	case errors.As(err, &de):
		return de.Path
	}
	return ""
}

// PositionOf is the line and column (both from 1) of a syntax error in
// a request's code, or 0, 0.
func PositionOf(err error) (line, col int) {
	var remote *Error
	var se *vm.SyntaxError
	var src *sourceError
	switch {
	case errors.As(err, &remote):
		return remote.Line, remote.Col
	case errors.As(err, &se):
		return se.Line, se.Col
	case errors.As(err, &src):
		return src.line, src.col
	}
	return 0, 0
}

// sourceError is source code refused (a method's, by method_set) with
// where in it the parser or resolver stopped; its message is err's.
type sourceError struct {
	err       error
	line, col int
}

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// goPrefix is a Go package's prefix on an error message ("store: ",
// "vm: "), at the start of the message, of a line or of a wrapped part.
var goPrefix = regexp.MustCompile(`(^|\n|: )(?:bolt|catalog|command|cycle|embed|fulltext|gguf|heartbeat|image|index|library|llm|mind|ollama|openai|store|uvm|vector|vm|zmqbridge): `)

// Message is err's message as a client is shown it, by every transport
// and the CLI alike: without the Go package prefixes its parts carry
// ("vm: ", "store: "). A remote server's error is shown as it came.
func Message(err error) string {
	var remote *Error
	if errors.As(err, &remote) && remote.Error() == err.Error() {
		return remote.Message
	}
	msg := err.Error()
	for {
		// Again for a prefix a removal brings to the front ("vm: store: ").
		out := goPrefix.ReplaceAllString(msg, "$1")
		if out == msg {
			return strings.TrimSpace(out)
		}
		msg = out
	}
}

// Error is an error a server reported for a command, as a client
// receives it: its kind, message and details. It matches, with
// errors.Is, the sentinel its kind stands for (store.ErrNoSpace for
// no_space, store.ErrCorrupt for corrupt, ...), so a caller classifies an
// error alike whether the image was opened here or reached through its
// server.
type Error struct {
	Kind    Kind
	Message string
	// Path is the file the error is about, for no_space and some corrupt
	// errors; else "".
	Path string
	// Cycle is the cycle the error is about, or 0.
	Cycle int64
	// Line and Col are where a syntax error in the request's code is
	// (both from 1), or 0.
	Line, Col int
	// Blocked, for an undo refused as a conflict, names each object
	// and the later transaction that changed it.
	Blocked map[store.OID]store.TID
}

func (e *Error) Error() string { return e.Message }

// Is reports whether target is the sentinel e's kind stands for.
func (e *Error) Is(target error) bool {
	for _, ks := range kindSentinels {
		if ks.kind == e.Kind {
			return ks.errors[0] == target
		}
	}
	return false
}

// CheckText refuses s, the request's field, unless it is valid UTF-8: a
// request's strings are text, and bytes travel as bytes. Code that is not
// would otherwise be read with each bad byte replaced by U+FFFD.
func CheckText(field, s string) error {
	if !utf8.ValidString(s) {
		return badRequest("%q is not valid UTF-8", field)
	}
	return nil
}

// badRequest is an ErrBadRequest with a message.
func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
}

// fileError is err, about a file a request named as what ("adapter",
// "model", "path"), as a client reads it: the file and what is wrong with
// it, without the Go operation that found it ("stat", "open"), such as
// "adapter /x.gguf: no such file" or "cannot read model /m.gguf:
// permission denied". It matches what err matches (fs.ErrNotExist,
// fs.ErrPermission); an err about no file is returned as it is.
func fileError(what string, err error) error {
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		return err
	}
	var msg string
	switch {
	case errors.Is(err, fs.ErrNotExist):
		msg = fmt.Sprintf("%s %s: no such file", what, pe.Path)
	case errors.Is(err, fs.ErrPermission):
		msg = fmt.Sprintf("cannot read %s %s: permission denied", what, pe.Path)
	default:
		msg = fmt.Sprintf("%s %s: %v", what, pe.Path, pe.Err)
	}
	return &reworded{msg: msg, err: err}
}

// reworded is err with a message of its own.
type reworded struct {
	msg string
	err error
}

func (e *reworded) Error() string { return e.msg }
func (e *reworded) Unwrap() error { return e.err }

// WithKind is err classified as sentinel's kind, with err's message
// unchanged: for an error whose kind's sentinel would only repeat what
// its message says ("the server is stopping: shutting down").
func WithKind(sentinel, err error) error { return &kinded{err: err, kind: sentinel} }

type kinded struct{ err, kind error }

func (e *kinded) Error() string   { return e.err.Error() }
func (e *kinded) Unwrap() []error { return []error{e.err, e.kind} }
