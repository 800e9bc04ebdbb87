package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"batos/internal/cycle"
	"batos/internal/image"
	"batos/internal/store"
	"batos/internal/vm"
)

// Replayer runs the regression replay of improvement cycles.
type Replayer struct {
	db *image.DB
	// vm runs the samples: it must count nothing (a replay is no real
	// call) and learn nothing (a message nothing understands is a
	// difference, not a mission).
	vm *vm.VM
}

// NewReplayer replays on db with machine, a VM without telemetry or a
// doesNotUnderstand handler that learns.
func NewReplayer(db *image.DB, machine *vm.VM) *Replayer { return &Replayer{db: db, vm: machine} }

var _ cycle.Improver = (*Replayer)(nil)

// maxDiffs bounds the differences a report lists (the count of the rest
// is said).
const maxDiffs = 12

// errRollback ends a replay's transaction without committing it.
var errRollback = errors.New("heartbeat: replay rolled back")

// outcome is what one version did on one sample.
type outcome struct {
	ok     bool
	result string // the answer, canonical
	kind   string // the failure's kind
	errMsg string // the failure's message, without backtrace
	writes []string
	steps  uint64
}

func (o outcome) String() string {
	if o.ok {
		return "answered " + clip(o.result, 300)
	}
	return fmt.Sprintf("failed (%s): %s", o.kind, clip(o.errMsg, 300))
}

// Replay runs the current method and c's candidate on every recorded call
// of the method (cycle.Improver). A fix's targets are the calls that fail
// now: the candidate must answer them; every other call must come out
// the same, result and written slots. An optimization must take fewer
// steps over the replay than the current method.
func (r *Replayer) Replay(ctx context.Context, c *cycle.Cycle) (cycle.ReplayReport, error) {
	im := c.Mission.Improve
	owner, selector := c.Mission.Receiver, c.Mission.Selector
	var samples []vm.Sample
	err := r.db.View(ctx, func(tx *image.Tx) error {
		o, err := tx.Object(owner)
		if err != nil {
			return err
		}
		if cycle.CurrentSource(o, selector) != im.Base {
			return fmt.Errorf("%w: %s of %s is not the code the proposal was for", cycle.ErrBaseChanged, selector, owner)
		}
		samples, err = Samples(tx, owner, selector)
		return err
	})
	if err != nil {
		return cycle.ReplayReport{}, err
	}
	return r.compare(ctx, owner, selector, im.Kind, c.Code, samples)
}

// compare replays samples on the current method and on candidate.
func (r *Replayer) compare(ctx context.Context, owner store.OID, selector, kind, candidate string, samples []vm.Sample) (cycle.ReplayReport, error) {
	rep := cycle.ReplayReport{Samples: len(samples)}
	if len(samples) == 0 {
		rep.Summary = "the method has no recorded calls to replay: nothing shows the replacement does no harm (call it first, then audit again)"
		return rep, nil
	}
	var diffs []string
	for i, s := range samples {
		old, err := r.run(ctx, owner, selector, "", s)
		if err != nil {
			return rep, err
		}
		cand, err := r.run(ctx, owner, selector, candidate, s)
		if err != nil {
			return rep, err
		}
		rep.OldSteps += old.steps
		rep.NewSteps += cand.steps
		call := fmt.Sprintf("call %d, %s", i+1, callText(selector, s))
		if kind == cycle.ImproveFix && !old.ok {
			rep.Targeted++
			if !cand.ok {
				diffs = append(diffs, fmt.Sprintf("%s: fails now and still %s", call, cand))
			}
			continue
		}
		diffs = append(diffs, differences(call, old, cand)...)
	}
	rep.Diffs = diffs
	if len(diffs) > maxDiffs {
		rep.Diffs = append(diffs[:maxDiffs:maxDiffs], fmt.Sprintf("… and %d more differences", len(diffs)-maxDiffs))
	}
	switch {
	case len(diffs) > 0:
		rep.Summary = fmt.Sprintf("the replacement changes what %d of the %d recorded calls do, which the proposal does not target", countCalls(diffs), len(samples))
		if kind == cycle.ImproveFix {
			rep.Summary = fmt.Sprintf("the replay of %d recorded calls (%d failing now, which it must mend) found %d differences", len(samples), rep.Targeted, len(diffs))
		}
	case kind == cycle.ImproveOptimize && rep.NewSteps >= rep.OldSteps:
		rep.Summary = fmt.Sprintf("not faster: over the %d recorded calls the replacement took %d steps and the current method %d; an optimization must take fewer", len(samples), rep.NewSteps, rep.OldSteps)
	default:
		rep.Passed = true
		rep.Summary = fmt.Sprintf("the replay of %d recorded calls passed: %d steps now, %d with the replacement", len(samples), rep.OldSteps, rep.NewSteps)
		if kind == cycle.ImproveFix {
			rep.Summary += fmt.Sprintf("; the %d calls failing now succeed, the others are unchanged", rep.Targeted)
		}
	}
	return rep, nil
}

// countCalls counts the distinct calls a list of differences is about.
func countCalls(diffs []string) int {
	seen := map[string]bool{}
	for _, d := range diffs {
		call, _, _ := strings.Cut(d, ":")
		seen[call] = true
	}
	return len(seen)
}

// differences says how cand differs from old on one call, if it does.
func differences(call string, old, cand outcome) []string {
	var out []string
	switch {
	case old.ok != cand.ok:
		out = append(out, fmt.Sprintf("%s: the current method %s, the replacement %s", call, old, cand))
	case old.ok && old.result != cand.result:
		out = append(out, fmt.Sprintf("%s: the current method answered %s, the replacement %s", call, clip(old.result, 300), clip(cand.result, 300)))
	case !old.ok && (old.kind != cand.kind || old.errMsg != cand.errMsg):
		out = append(out, fmt.Sprintf("%s: the current method %s, the replacement %s", call, old, cand))
	}
	if !slices.Equal(old.writes, cand.writes) {
		out = append(out, fmt.Sprintf("%s: the current method wrote %s, the replacement %s", call, writesText(old.writes), writesText(cand.writes)))
	}
	return out
}

func writesText(w []string) string {
	if len(w) == 0 {
		return "nothing"
	}
	return clip(strings.Join(w, "; "), 400)
}

// run sends sample s to the method, the candidate source installed in
// its place unless source is "", in a transaction that is rolled back,
// and returns what it did.
func (r *Replayer) run(ctx context.Context, owner store.OID, selector, source string, s vm.Sample) (outcome, error) {
	var out outcome
	err := r.db.Update(ctx, func(tx *image.Tx) error {
		tx.Note("heartbeat: replay (rolled back)")
		if source != "" {
			o, err := tx.Object(owner)
			if err != nil {
				return err
			}
			if err := o.Set(selector, &image.Method{Source: source}); err != nil {
				return err
			}
		}
		res, err := r.vm.Send(ctx, tx, s.Receiver, selector, s.Args, s.Kwargs)
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		out.steps = res.Steps
		if err != nil {
			out.kind, out.errMsg = failureOf(err)
		} else {
			out.ok = true
			out.result = canonical(res.Value, res.Repr, nil)
		}
		changes, cerr := tx.Changes()
		if cerr != nil {
			return cerr
		}
		out.writes = writes(changes, owner, selector)
		return errRollback
	})
	if err != nil && !errors.Is(err, errRollback) {
		return outcome{}, fmt.Errorf("replay: %w", err)
	}
	return out, nil
}

// failureOf is a failure's kind and message as the replay compares them:
// the message without its backtrace, whose line numbers differ between
// two versions of a method that fail alike.
func failureOf(err error) (kind, msg string) {
	var le *vm.LimitError
	var ve *vm.Error
	switch {
	case errors.As(err, &le):
		return le.Limit.String(), le.Limit.String() + " exceeded"
	case errors.As(err, &ve):
		return "error", ve.Msg
	case errors.Is(err, vm.ErrNoMind):
		return "not understood", err.Error()
	}
	return "error", err.Error()
}

// writes describes what a call changed, canonically: the slots of
// existing objects it set or deleted, and the objects it created, which
// are numbered in order of creation (two runs give them different OIDs).
// The method's own slot, where the candidate was installed, is left out.
func writes(changes []image.Change, owner store.OID, selector string) []string {
	fresh := map[store.OID]int{}
	for _, c := range changes {
		if c.Created {
			fresh[c.OID] = len(fresh) + 1
		}
	}
	var out []string
	for _, c := range changes {
		if c.Created {
			var slots []string
			for _, s := range c.After {
				slots = append(slots, s.Name+"="+canonical(s.Value, "", fresh))
			}
			out = append(out, fmt.Sprintf("new object %d {%s}", fresh[c.OID], strings.Join(slots, ", ")))
			continue
		}
		before := map[string]image.Value{}
		for _, s := range c.Before {
			before[s.Name] = s.Value
		}
		after := map[string]bool{}
		for _, s := range c.After {
			after[s.Name] = true
			if c.OID == owner && s.Name == selector {
				continue
			}
			if b, ok := before[s.Name]; ok && image.Equal(b, s.Value) {
				continue
			}
			out = append(out, fmt.Sprintf("%s.%s = %s", c.OID, s.Name, canonical(s.Value, "", fresh)))
		}
		for _, name := range slices.Sorted(maps.Keys(before)) {
			if !after[name] && !(c.OID == owner && name == selector) {
				out = append(out, fmt.Sprintf("%s.%s deleted", c.OID, name))
			}
		}
	}
	return out
}

// canonical writes a value so that two runs that did the same compare
// equal: objects created by the call are named by their order of
// creation. repr stands in for a value the image cannot hold (nil).
func canonical(v image.Value, repr string, fresh map[store.OID]int) string {
	if v == nil {
		return "<unstorable " + repr + ">"
	}
	var b strings.Builder
	writeCanonical(&b, v, fresh, 0)
	return b.String()
}

func writeCanonical(b *strings.Builder, v image.Value, fresh map[store.OID]int, depth int) {
	if depth > image.MaxDepth {
		b.WriteString("...")
		return
	}
	switch v := v.(type) {
	case image.Ref:
		if n, ok := fresh[store.OID(v)]; ok {
			fmt.Fprintf(b, "<new object %d>", n)
			return
		}
		b.WriteString(image.Repr(v))
	case *image.List:
		b.WriteString("[")
		for i, e := range v.Elems {
			if i > 0 {
				b.WriteString(", ")
			}
			writeCanonical(b, e, fresh, depth+1)
		}
		b.WriteString("]")
	case image.Tuple:
		b.WriteString("(")
		for i, e := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			writeCanonical(b, e, fresh, depth+1)
		}
		b.WriteString(")")
	case *image.Dict:
		b.WriteString("{")
		i := 0
		for k, e := range v.All() {
			if i > 0 {
				b.WriteString(", ")
			}
			writeCanonical(b, k, fresh, depth+1)
			b.WriteString(": ")
			writeCanonical(b, e, fresh, depth+1)
			i++
		}
		b.WriteString("}")
	case *image.Method:
		b.WriteString("<method " + Version(v.Source) + ">")
	default:
		b.WriteString(image.Repr(v))
	}
}

// callText is a sample's call as Starlark: average([1, 2]).
func callText(selector string, s vm.Sample) string {
	var parts []string
	for _, a := range s.Args {
		parts = append(parts, clip(image.Repr(a), 120))
	}
	for _, kw := range s.Kwargs {
		parts = append(parts, kw.Name+" = "+clip(image.Repr(kw.Value), 120))
	}
	return fmt.Sprintf("%s(%s)", selector, strings.Join(parts, ", "))
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && cut < len(s) && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
