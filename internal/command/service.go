package command

import (
	"context"
	"time"

	"batos/internal/heartbeat"
	"batos/internal/image"
	"batos/internal/store"
	"batos/internal/vm"
)

// Service is every command batos serves. Local runs them on an image this
// process holds; a transport's client (protocol.Remote) runs them on the
// server holding it. Errors carry a Kind (KindOf).
type Service interface {
	// Send sends a message in its own transaction.
	Send(ctx context.Context, req SendRequest) (vm.Result, error)
	// Eval runs Starlark code with the root's names bound, in its own
	// transaction.
	Eval(ctx context.Context, req EvalRequest) (vm.Result, error)
	// Inspect describes an object: its slots, parents and inherited slots.
	Inspect(ctx context.Context, target string) (ObjectView, error)
	// InspectAt describes an object as transaction at left it (its state
	// then, its slots, parents and inherited slots then), the target
	// resolved then too.
	InspectAt(ctx context.Context, target string, at store.TID) (ObjectView, error)
	// History lists an object's revisions, newest first, up to limit (all
	// for 0).
	History(ctx context.Context, target string, limit int) ([]Revision, error)
	// Log lists committed transactions, newest first.
	Log(ctx context.Context, q store.LogQuery) ([]store.TxInfo, error)
	// Undo commits the inverse of a transaction.
	Undo(ctx context.Context, tid store.TID) (Undone, error)
	// Pack drops old history and what is unreachable, and may compact the
	// file, while sends go on.
	Pack(ctx context.Context, req PackRequest) (Packed, error)
	// Stats counts what the image holds.
	Stats(ctx context.Context) (store.Stats, error)
	// Verify reads every record, log entry and blob, checks checksums and
	// digests and follows every reference; the report lists what is
	// wrong.
	Verify(ctx context.Context) (*store.Report, error)

	// SetMethod installs a method's source as a slot of an object.
	SetMethod(ctx context.Context, req MethodRequest) (MethodChange, error)
	// RevertMethod restores what a slot held before a cycle installed a
	// method there.
	RevertMethod(ctx context.Context, target, name string) (MethodChange, error)
	// RemoveSlot removes an own slot of an object (a data slot, a method
	// or a parent slot); an undo brings it back.
	RemoveSlot(ctx context.Context, target, name string) (SlotRemoved, error)

	// Personas reports every persona (only the one named, with its
	// recent calls, when only is set) and its adapter's tier on the
	// mind's inference server, with the image's base model and recorded
	// server.
	Personas(ctx context.Context, only string) (PersonaReport, error)
	// EditPersona changes a persona; an adapter path is read by the
	// process holding the image.
	EditPersona(ctx context.Context, name string, edit PersonaEdit) (PersonaChange, error)
	// WarmPersonas brings personas' adapters (every persona's for no
	// names) to the hot tier on the mind's server now.
	WarmPersonas(ctx context.Context, names []string) ([]WarmResult, error)
	// ImportModel keeps a GGUF base model file in the image (the path is
	// read by the process holding the image).
	ImportModel(ctx context.Context, req ModelImport) (ImportedModel, error)
	// Model is the base model the image keeps, or nil.
	Model(ctx context.Context) (*BaseModel, error)

	// InitiateCycle is the seed's initiate_cognitive_cycle: a cycle for a
	// brief, answered at once with its handle.
	InitiateCycle(ctx context.Context, target, brief string) (CycleHandle, error)
	// ListCycles lists up to limit cycles (every one for 0), newest first.
	ListCycles(ctx context.Context, limit int) ([]CycleView, error)
	// ShowCycle shows one cycle with everything it recorded.
	ShowCycle(ctx context.Context, id int64) (*CycleView, error)
	// RetryCycle runs a FAILED cycle again from where it failed.
	RetryCycle(ctx context.Context, id int64) (CycleHandle, error)
	// CancelCycle fails an unfinished cycle with the reason "cancelled".
	CancelCycle(ctx context.Context, id int64) (Cancelled, error)

	// CatalogAdd adds files and directories (read by the process holding
	// the image) or one text to the knowledge catalog, each file in its
	// own transaction; the result has one outcome per file.
	CatalogAdd(ctx context.Context, req CatalogAddRequest) (CatalogAddResult, error)
	// CatalogSearch searches the catalog's passages, or the image's
	// methods.
	CatalogSearch(ctx context.Context, req CatalogSearchRequest) (CatalogSearchResult, error)
	// CatalogList lists the catalog's documents.
	CatalogList(ctx context.Context) (CatalogList, error)
	// CatalogShow shows a document, by its ID or path, with its chunks.
	CatalogShow(ctx context.Context, doc string) (CatalogDocument, error)
	// CatalogRemove takes a document, by its ID or path, out of the
	// catalog.
	CatalogRemove(ctx context.Context, doc string) (CatalogRemoved, error)
	// CatalogReindex rebuilds the catalog's derived indexes from the
	// image.
	CatalogReindex(ctx context.Context) (CatalogReindexed, error)
	// CatalogStats counts what the catalog and its indexes hold.
	CatalogStats(ctx context.Context) (CatalogStats, error)

	// MethodStats reports the method telemetry: every method's, or, for a
	// target, that object's.
	MethodStats(ctx context.Context, target string) (MethodStatsReport, error)
	// AuditRun runs a self-audit now and answers it once ALFRED's answer
	// is kept; its proposals are acted on in the background.
	AuditRun(ctx context.Context) (AuditView, error)
	// AuditList lists up to limit audits (all for 0), newest first,
	// without their facts and answers.
	AuditList(ctx context.Context, limit int) ([]AuditView, error)
	// AuditShow shows one audit whole.
	AuditShow(ctx context.Context, id int64) (AuditView, error)
	// ProposalList lists the proposals awaiting a decision or in a cycle,
	// or, with all, every proposal; newest first.
	ProposalList(ctx context.Context, all bool) ([]heartbeat.ProposalView, error)
	// ProposalShow shows a proposal with its candidate and replay.
	ProposalShow(ctx context.Context, id string) (heartbeat.ProposalView, error)
	// ProposalAccept installs a proposal awaiting approval, after
	// replaying it again at the current state.
	ProposalAccept(ctx context.Context, id string) (heartbeat.ProposalView, error)
	// ProposalReject refuses a proposal awaiting approval; its method
	// cools down.
	ProposalReject(ctx context.Context, id, reason string) (heartbeat.ProposalView, error)
}

// Learn says how a send treats a message nothing understands, when a
// mind learns it.
type Learn struct {
	// Handle answers the cycle's handle at once instead of waiting; the
	// cycle answers the message itself once it has the method.
	Handle bool
	// Timeout bounds the wait; zero means DefaultLearnTimeout.
	Timeout time.Duration
}

// DefaultLearnTimeout bounds how long a send waits for its cycle.
const DefaultLearnTimeout = 10 * time.Minute

// SendRequest is a message to send.
type SendRequest struct {
	// Target is a root name (genesis) or an OID (oid:7 or 7).
	Target   string
	Selector string
	Args     []image.Value
	Kwargs   []image.Slot
	Learn    Learn
}

// Check refuses a request no server can carry out.
func (r SendRequest) Check() error {
	if err := CheckText("target", r.Target); err != nil {
		return err
	}
	if err := CheckText("selector", r.Selector); err != nil {
		return err
	}
	if r.Selector == "" {
		return badRequest(`"selector" is empty`)
	}
	if r.Learn.Handle && r.Learn.Timeout > 0 {
		return badRequest(`"timeout_ms" bounds a wait, and "learn": "handle" does not wait`)
	}
	if r.Learn.Timeout < 0 {
		return badRequest("a learning timeout cannot be negative")
	}
	return nil
}

// EvalRequest is code to evaluate.
type EvalRequest struct {
	Code string
	// Session, unless empty, names a REPL session the client chose (at
	// most MaxSessionID bytes): the variables and the top-level functions
	// of its earlier successful inputs carry to this one, whichever
	// service runs it (see Local's sessions for how long they last).
	Session string
	// Self, unless empty, is a target (a root name, a dotted path through
	// slots holding objects, or an OID) bound as self in the code, as an
	// outliner's evaluator binds the object it shows. It is bound anew in
	// each eval, never carried by a session.
	Self string
}

// MaxSessionID bounds EvalRequest.Session.
const MaxSessionID = 128

// Check refuses what no service could evaluate.
func (r EvalRequest) Check() error {
	if err := CheckText("code", r.Code); err != nil {
		return err
	}
	if err := CheckText("session", r.Session); err != nil {
		return err
	}
	if len(r.Session) > MaxSessionID {
		return badRequest("a session id is at most %d bytes, not %d", MaxSessionID, len(r.Session))
	}
	return CheckText("self", r.Self)
}

// Revision is one revision of an object, with the transaction that wrote
// it.
type Revision struct {
	store.Revision
	// Tx is the transaction of the revision; when its log entry is
	// missing, only its TID and time are known.
	Tx store.TxInfo
}

// Undone is what an undo did.
type Undone struct {
	// Undone is the transaction undone; TID the one that undid it.
	Undone, TID store.TID
	// Description and Objects describe the transaction undone, when known
	// (Objects is -1 when not).
	Description string
	Objects     int
}

// PackRequest is what to pack.
type PackRequest struct {
	// Before: revisions superseded before this time are dropped. Zero with
	// Compact: no pack, only the compaction.
	Before time.Time
	// Compact then rewrites the file without the space dropped history
	// leaves free (bbolt never shrinks its file by itself).
	Compact bool
}

// Check refuses a pack with nothing to do.
func (r PackRequest) Check() error {
	if r.Before.IsZero() && !r.Compact {
		return badRequest(`"before" is required (or "compact": true alone)`)
	}
	return nil
}

// Packed is what a pack dropped and a compaction saved.
type Packed struct {
	Pack    store.PackResult
	Compact store.CompactResult
	Took    time.Duration
}

// CycleHandle is a cycle as a request that started or retried it sees it.
type CycleHandle struct {
	Cycle int64
	State string
}

// Cancelled is a cancelled cycle and the state it was in.
type Cancelled struct {
	Cycle      int64
	State, Was string
}

// MethodRequest is a method to install.
type MethodRequest struct {
	Target, Name, Source string
	// From names where the source came from (a file), for the log.
	From string
}

// MethodChange is what a method command changed: the transaction (0 when
// nothing changed) and, for a revert, what the slot holds now ("the
// previous method", "the previous value" or "nothing").
// SlotRemoved is what slot_remove did: the transaction, and what the
// slot held (its repr, clipped).
type SlotRemoved struct {
	TID     store.TID
	Removed string
}

type MethodChange struct {
	TID      store.TID
	Restored string
}
