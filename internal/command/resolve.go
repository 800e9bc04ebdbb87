package command

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"batos/internal/image"
	"batos/internal/store"
)

// tidDigits is how many hexadecimal digits a TID has as the log prints
// it; fewer typed are the first digits of one.
const tidDigits = 16

// maxCandidates bounds the TIDs an ambiguous prefix's error lists.
const maxCandidates = 10

// AmbiguousTIDError is returned for a TID prefix that begins several
// transactions' TIDs. It unwraps to ErrBadRequest.
type AmbiguousTIDError struct {
	Prefix string
	// Candidates are the transactions it begins, newest first, at most
	// maxCandidates; More says there are others.
	Candidates []store.TxInfo
	More       bool
}

func (e *AmbiguousTIDError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "TID prefix %s is ambiguous; it begins ", e.Prefix)
	for i, t := range e.Candidates {
		if i > 0 {
			b.WriteString(", ")
		}
		desc := t.Description
		if desc == "" {
			desc = "-"
		}
		fmt.Fprintf(&b, "%s (%s)", t.TID, clip(desc))
	}
	if e.More {
		b.WriteString(" and more")
	}
	b.WriteString("; give more digits")
	return b.String()
}

func (e *AmbiguousTIDError) Unwrap() error { return ErrBadRequest }

// logReader is what resolving a TID prefix reads: a Service.
type logReader interface {
	Log(ctx context.Context, q store.LogQuery) ([]store.TxInfo, error)
}

// CheckTIDText checks the spelling of a TID or TID prefix as people type
// it and returns it bare: surrounding space and a 0x are dropped, and
// what is left must be 1 to 16 hexadecimal digits (else ErrBadRequest).
// Whether a transaction has it is ResolveTID's question.
func CheckTIDText(text string) (string, error) {
	bare := strings.TrimSpace(text)
	if strings.HasPrefix(strings.ToLower(bare), "0x") {
		bare = bare[2:]
	}
	if bare == "" || len(bare) > tidDigits || strings.Trim(bare, "0123456789abcdefABCDEF") != "" {
		return "", badRequest("bad TID %q: want 16 hexadecimal digits, as the log prints them, or their first digits", clip(text))
	}
	if len(bare) == tidDigits {
		if _, err := store.ParseTID(bare); err != nil {
			return "", badRequest("%s", strings.TrimPrefix(err.Error(), store.ErrInvalid.Error()+": "))
		}
	}
	return bare, nil
}

// ResolveTID reads a TID as people type it: 16 hexadecimal digits, as
// the log prints them, are that TID, whether a transaction has it or
// not; fewer are the first digits of one (18eec93f), and the one
// transaction whose TID begins with them is the answer. A prefix that
// begins none is store.ErrNoTransaction; one that begins several is an
// *AmbiguousTIDError listing them; text that is no hexadecimal is
// ErrBadRequest. The CLI and the bridge resolve before they undo, so
// Undo itself takes exactly the TID it is given.
func ResolveTID(ctx context.Context, r logReader, text string) (store.TID, error) {
	text, err := CheckTIDText(text)
	if err != nil {
		return 0, err
	}
	if len(text) == tidDigits {
		tid, _ := store.ParseTID(text) // checked
		return tid, nil
	}
	n, _ := strconv.ParseUint(text, 16, 64)
	tid := store.TID(n)
	prefix := strings.ToLower(text)
	shift := 4 * uint(tidDigits-len(prefix))
	lo := tid << shift
	hi := (tid + 1) << shift
	if hi > store.MaxTID || hi < lo {
		hi = 0 // no bound: the prefix's range reaches the last TID
	}
	txns, err := r.Log(ctx, store.LogQuery{Before: hi, Limit: maxCandidates + 1})
	if err != nil {
		return 0, err
	}
	var match []store.TxInfo
	for _, t := range txns {
		if t.TID >= lo {
			match = append(match, t)
		}
	}
	switch len(match) {
	case 0:
		return 0, fmt.Errorf("no transaction's TID begins %s: %w", prefix, store.ErrNoTransaction)
	case 1:
		return match[0].TID, nil
	}
	e := &AmbiguousTIDError{Prefix: prefix, Candidates: match}
	if len(match) > maxCandidates {
		e.Candidates, e.More = match[:maxCandidates], true
	}
	return 0, e
}

// resolvePath finds a target that may be a dotted path: a root name or
// an OID, then slot after slot, each an own slot of the object before it
// holding an object (genesis.child.toy).
func resolvePath(tx *image.Tx, target string) (store.OID, error) {
	first, rest, dotted := strings.Cut(target, ".")
	if !dotted {
		return tx.Resolve(target)
	}
	oid, err := tx.Resolve(first)
	if err != nil {
		return 0, err
	}
	path := first
	for _, name := range strings.Split(rest, ".") {
		o, err := tx.Object(oid)
		if err != nil {
			return 0, err
		}
		v, ok := o.Get(name)
		ref, isRef := v.(image.Ref)
		if !ok || !isRef {
			what := "no slot"
			if ok {
				what = "a slot that holds no object:"
			}
			return 0, fmt.Errorf("%w: %s has %s %s", image.ErrNoTarget, path, what, clip(name))
		}
		oid, path = store.OID(ref), path+"."+name
	}
	return oid, nil
}
