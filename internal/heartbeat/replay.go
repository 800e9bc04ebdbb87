package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"

	"batos/internal/cycle"
	"batos/internal/image"
	"batos/internal/store"
	"batos/internal/vm"
)

// Replayer runs the regression replay of improvement cycles. It is safe
// for concurrent use: the cycles and a person's accept replay at once.
//
// # What a replay compares
//
// Every recorded call runs against the current method and against the
// candidate, each in a rehearsal (image.DB.Rehearse: a transaction that
// is never committed) on one snapshot taken when the replay starts, so
// that what commits meanwhile changes neither run. Of each run it keeps
// what the caller and the image would see:
//
//   - the answer, or the failure's kind and message (without the
//     backtrace, whose line numbers differ between versions);
//   - the slots the call left changed in existing objects, compared as
//     the state it leaves (the order of the writes, and of new slots,
//     does not count; the order of parent slots does: delegation
//     follows it); a slot deleted is a change; the method's own slot,
//     where the candidate was put, is left out;
//   - the objects the call created that the answer, the arguments or
//     the slots written refer to, numbered in the order those reach them
//     (two runs give them other OIDs, and may create them in another
//     order), with their slots as above; an object nothing refers to is
//     garbage a pack removes and is not compared;
//   - the arguments' containers, when the call changed them in place
//     (its caller holds them);
//   - the Starlark steps.
//
// Values compare as the image stores them: a float by its bits (NaN is
// NaN, -0.0 is not 0.0), an int is no float, and a dict's order counts
// (Starlark dicts iterate in insertion order). A failed call commits
// nothing, so what it wrote before failing is not compared.
//
// A call the two versions disagree on runs once more with the current
// method: where the current method disagrees with itself (it reads the
// clock), the values that varied are not compared and the rest must
// agree; a call whose outcome varies in shape cannot be compared and is
// left out, as are recorded calls that no longer reach the method (the
// receiver overrides it or no longer inherits it, or an object they
// name is gone). The report counts what was left out; a replay with
// nothing left to compare fails.
//
// A replay is bounded: at most maxReplaySamples calls, each run at most
// three times within the VM's limits, and a candidate that hits a limit
// the current method does not hit (it loops, say) stops the replay
// there.
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

// maxReplaySamples bounds the recorded calls one replay runs: the
// telemetry keeps 16 of each outcome; a samples object edited to hold
// more is replayed in part, and the report says how many were left out.
const maxReplaySamples = 32

// replayCall sends the recorded message in a rehearsal, as an
// expression whose globals come back after it: the arguments' containers
// as the call left them.
const replayCall = "send(receiver, selector, *args, **kwargs)"

// outcome is what one version did on one sample.
type outcome struct {
	ok     bool
	result string // the answer, canonical
	kind   string // the failure's kind
	errMsg string // the failure's message, without backtrace
	limit  bool   // the failure is a limit's
	// effects are what the call left, canonical: slots written, objects
	// created, arguments changed.
	effects []string
	steps   uint64
}

func (o outcome) String() string {
	if o.ok {
		return "answered " + clip(o.result, 300)
	}
	return fmt.Sprintf("failed (%s): %s", o.kind, clip(o.errMsg, 300))
}

// text is the whole outcome, what run-to-run variation is looked for in.
func (o outcome) text() string {
	head := "answered " + o.result
	if !o.ok {
		head = fmt.Sprintf("failed (%s): %s", o.kind, o.errMsg)
	}
	return head + "\n" + strings.Join(o.effects, "\n")
}

// Replay runs the current method and c's candidate on every recorded call
// of the method (cycle.Improver). A fix's targets are the calls that fail
// now: the candidate must answer them, and there must be one; every
// other call must come out the same, answer and effects. An optimization
// must take fewer steps over the replay than the current method. The
// method changed since the proposal (or gone) is cycle.ErrBaseChanged.
func (r *Replayer) Replay(ctx context.Context, c *cycle.Cycle) (cycle.ReplayReport, error) {
	im := c.Mission.Improve
	if im == nil {
		return cycle.ReplayReport{}, fmt.Errorf("replay: cycle %d is no improvement", c.ID)
	}
	owner, selector := c.Mission.Receiver, c.Mission.Selector
	var at store.TID
	var samples []vm.Sample
	skipped := 0
	err := r.db.View(ctx, func(tx *image.Tx) error {
		at = tx.Snapshot()
		if err := currentIs(tx, c); err != nil {
			return err
		}
		all, err := Samples(tx, owner, selector)
		for _, s := range all {
			if reaches(tx, s, owner, selector) {
				samples = append(samples, s)
			} else {
				skipped++
			}
		}
		return err
	})
	if err != nil {
		return cycle.ReplayReport{}, err
	}
	return r.compare(ctx, at, owner, selector, im.Kind, c.Code, samples, skipped)
}

// Check says whether improvement c may take its next step
// (cycle.Improver): its method must still be the code it was proposed
// for (cycle.ErrBaseChanged), and the proposal that started it must
// still wait for it (cycle.ErrUnwanted).
func (r *Replayer) Check(ctx context.Context, c *cycle.Cycle) error {
	if c.Mission.Improve == nil {
		return fmt.Errorf("check: cycle %d is no improvement", c.ID)
	}
	return r.db.View(ctx, func(tx *image.Tx) error {
		if err := currentIs(tx, c); err != nil {
			return err
		}
		return awaited(tx, c)
	})
}

// currentIs refuses, with cycle.ErrBaseChanged, an improvement whose
// method is gone or is no longer the code it was proposed for.
func currentIs(tx *image.Tx, c *cycle.Cycle) error {
	owner, selector := c.Mission.Receiver, c.Mission.Selector
	o, err := tx.Object(owner)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s, which held %s, is gone", cycle.ErrBaseChanged, owner, selector)
	} else if err != nil {
		return err
	}
	if cycle.CurrentSource(o, selector) != c.Mission.Improve.Base {
		return fmt.Errorf("%w: %s of %s is not the code the proposal was for", cycle.ErrBaseChanged, selector, owner)
	}
	return nil
}

// reaches reports whether sample s still runs the method selector of
// owner: its receiver and every object its arguments name exist, and
// the receiver's lookup of selector finds owner's slot first.
func reaches(tx *image.Tx, s vm.Sample, owner store.OID, selector string) bool {
	var oids []store.OID
	for _, a := range s.Args {
		oids = appendRefs(oids, a, 0)
	}
	for _, kw := range s.Kwargs {
		oids = appendRefs(oids, kw.Value, 0)
	}
	for _, oid := range oids {
		if !exists(tx, oid) {
			return false
		}
	}
	recv, err := tx.Object(s.Receiver)
	if err != nil {
		return false
	}
	for x, err := range tx.Lineage(recv) {
		if err != nil {
			return false
		}
		if _, ok := x.Peek(selector); ok {
			return x.OID() == owner
		}
	}
	return false
}

// tally is what a replay has found so far.
type tally struct {
	diffs   []string
	judged  int    // calls whose comparison counted
	varying int    // calls left out: the current method varies in shape
	stopped string // why the replay stopped early, if it did
}

// compare replays samples on the current method and on candidate, at
// snapshot at.
func (r *Replayer) compare(ctx context.Context, at store.TID, owner store.OID, selector, kind, candidate string, samples []vm.Sample, skipped int) (cycle.ReplayReport, error) {
	left := max(len(samples)-maxReplaySamples, 0)
	samples = samples[:len(samples)-left]
	rep := cycle.ReplayReport{Samples: len(samples), Skipped: skipped}
	if len(samples) == 0 {
		rep.Summary = "the method has no recorded calls to replay: nothing shows the replacement does no harm (call it first, then audit again)" + notes(skipped, left, 0)
		return rep, nil
	}
	var t tally
	for i, s := range samples {
		call := fmt.Sprintf("call %d, %s", i+1, callText(selector, s))
		old, cand, err := r.judge(ctx, at, owner, selector, kind, candidate, s, call, &t, &rep)
		if err != nil {
			return rep, err
		}
		if cand.limit && !(old.limit && old.kind == cand.kind) {
			t.stopped = fmt.Sprintf("the replay stopped at call %d: the replacement ran into the %s there, and the current method does not; the %d calls after it were not run", i+1, cand.kind, len(samples)-i-1)
			break
		}
	}
	diffs := t.diffs
	if t.stopped != "" {
		diffs = append(diffs, t.stopped)
	}
	rep.Diffs = diffs
	if len(diffs) > maxDiffs {
		rep.Diffs = append(diffs[:maxDiffs:maxDiffs], fmt.Sprintf("… and %d more differences", len(diffs)-maxDiffs))
	}
	switch {
	case len(diffs) > 0 && kind == cycle.ImproveFix:
		rep.Summary = fmt.Sprintf("the replay of %d recorded calls (%d failing now, which it must mend) found %d differences", len(samples), rep.Targeted, len(diffs))
	case len(diffs) > 0:
		rep.Summary = fmt.Sprintf("the replacement changes what %d of the %d recorded calls do, which the proposal does not target", countCalls(t.diffs), len(samples))
	case t.judged == 0:
		rep.Summary = fmt.Sprintf("none of the %d recorded calls could be compared: the current method answers them differently from one run to the next", len(samples))
	case kind == cycle.ImproveFix && rep.Targeted == 0:
		rep.Summary = fmt.Sprintf("a fix must mend a call that fails now, and none of the %d recorded calls fails now: nothing shows what it fixes", len(samples))
	case kind == cycle.ImproveOptimize && rep.NewSteps >= rep.OldSteps:
		rep.Summary = fmt.Sprintf("not faster: over the %d recorded calls the replacement took %d steps and the current method %d; an optimization must take fewer", len(samples), rep.NewSteps, rep.OldSteps)
	default:
		rep.Passed = true
		rep.Summary = fmt.Sprintf("the replay of %d recorded calls passed: %d steps now, %d with the replacement", len(samples), rep.OldSteps, rep.NewSteps)
		if kind == cycle.ImproveFix {
			rep.Summary += fmt.Sprintf("; the %d calls failing now succeed, the others are unchanged", rep.Targeted)
		}
	}
	rep.Summary += notes(skipped, left, t.varying)
	return rep, nil
}

// judge runs sample s on both versions and adds what it found to t and
// rep.
func (r *Replayer) judge(ctx context.Context, at store.TID, owner store.OID, selector, kind, candidate string, s vm.Sample, call string, t *tally, rep *cycle.ReplayReport) (old, cand outcome, err error) {
	if old, err = r.run(ctx, at, owner, selector, "", s); err != nil {
		return old, cand, err
	}
	if cand, err = r.run(ctx, at, owner, selector, candidate, s); err != nil {
		return old, cand, err
	}
	rep.OldSteps += old.steps
	rep.NewSteps += cand.steps
	if kind == cycle.ImproveFix && !old.ok {
		rep.Targeted++
		t.judged++
		if !cand.ok {
			t.diffs = append(t.diffs, fmt.Sprintf("%s: fails now and still %s", call, cand))
		} else if len(rep.Mended) < maxDiffs {
			rep.Mended = append(rep.Mended, fmt.Sprintf("%s: %s now; the replacement %s and leaves %s", call, old, cand, effectsText(cand.effects)))
		}
		return old, cand, nil
	}
	d := differences(call, old, cand)
	if len(d) == 0 {
		t.judged++
		return old, cand, nil
	}
	// The current method may answer otherwise from one run to the next
	// (it reads the clock): what varies between two of its own runs is
	// no difference the replacement made.
	again, err := r.run(ctx, at, owner, selector, "", s)
	if err != nil {
		return old, cand, err
	}
	switch mask, comparable := varies(old, again); {
	case mask == nil:
		t.judged++
		t.diffs = append(t.diffs, d...)
	case !comparable:
		t.varying++
	case agreesOutside(mask, old, cand):
		t.judged++
	default:
		t.judged++
		for _, line := range d {
			t.diffs = append(t.diffs, line+" (what the current method itself varies from run to run is not compared)")
		}
	}
	return old, cand, nil
}

// notes says what the replay left out.
func notes(skipped, left, varying int) string {
	var out []string
	if skipped > 0 {
		out = append(out, fmt.Sprintf("%d recorded calls no longer reach this method (their receiver overrides it or no longer inherits it, or an object they name is gone) and were left out", skipped))
	}
	if left > 0 {
		out = append(out, fmt.Sprintf("%d more recorded calls were left out: a replay runs at most %d", left, maxReplaySamples))
	}
	if varying > 0 {
		out = append(out, fmt.Sprintf("%d calls were left out: the current method itself answers them differently from one run to the next", varying))
	}
	if len(out) == 0 {
		return ""
	}
	return " (" + strings.Join(out, "; ") + ")"
}

// varies compares two runs of the current method: nil when they agree;
// else, when they agree in shape, a mask of the tokens of their text
// that differ (comparable), or not comparable.
func varies(a, b outcome) (mask []bool, comparable bool) {
	ta, tb := tokens(a.text()), tokens(b.text())
	if slices.Equal(ta, tb) && a.ok == b.ok {
		return nil, true
	}
	mask = make([]bool, len(ta))
	if a.ok != b.ok || len(ta) != len(tb) {
		return mask, false
	}
	for i := range ta {
		mask[i] = ta[i] != tb[i]
	}
	return mask, true
}

// agreesOutside reports whether cand agrees with old wherever mask
// leaves a token to compare.
func agreesOutside(mask []bool, old, cand outcome) bool {
	to, tc := tokens(old.text()), tokens(cand.text())
	if old.ok != cand.ok || len(to) != len(tc) {
		return false
	}
	for i := range to {
		if !mask[i] && to[i] != tc[i] {
			return false
		}
	}
	return true
}

// tokens splits an outcome's text into words (letters, digits and
// .+-_, so a number is one) and single other characters, spaces
// dropped.
func tokens(s string) []string {
	var out []string
	start := -1
	for i, c := range s {
		word := unicode.IsLetter(c) || unicode.IsDigit(c) || strings.ContainsRune(".+-_", c)
		if word {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			out = append(out, s[start:i])
			start = -1
		}
		if !unicode.IsSpace(c) {
			out = append(out, string(c))
		}
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out
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
	if !slices.Equal(old.effects, cand.effects) {
		out = append(out, fmt.Sprintf("%s: the current method left %s, the replacement %s", call, effectsText(old.effects), effectsText(cand.effects)))
	}
	return out
}

func effectsText(w []string) string {
	if len(w) == 0 {
		return "nothing changed"
	}
	return clip(strings.Join(w, "; "), 400)
}

// run sends sample s to the method, the candidate source installed in
// its place unless source is "", in a rehearsal at snapshot at, and
// returns what it did.
func (r *Replayer) run(ctx context.Context, at store.TID, owner store.OID, selector, source string, s vm.Sample) (outcome, error) {
	var out outcome
	err := r.db.Rehearse(ctx, at, func(tx *image.Tx) error {
		if source != "" {
			o, err := tx.Object(owner)
			if err != nil {
				return err
			}
			if err := o.Set(selector, &image.Method{Source: source}); err != nil {
				return err
			}
		}
		// The sample's values are the replay's, shared by every run: each
		// run gets its own copy to change.
		args := image.Clone(image.NewList(s.Args...)).(*image.List)
		kwargs := &image.Dict{}
		for _, kw := range s.Kwargs {
			if err := kwargs.Set(image.String(kw.Name), image.Clone(kw.Value)); err != nil {
				return err
			}
		}
		before := canonical(args, "") + " " + canonical(kwargs, "")
		own, err := tx.Object(owner)
		if err != nil {
			return err
		}
		installed, _ := own.Peek(selector)
		res, err := r.vm.Eval(ctx, tx, replayCall, map[string]image.Value{
			"receiver": image.Ref(s.Receiver), "selector": image.String(selector), "args": args, "kwargs": kwargs,
		})
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		out.steps = res.Steps
		var le *vm.LimitError
		if err != nil {
			out.kind, out.errMsg, out.limit = failureOf(err)
			if !errors.As(err, &le) || le.Limit != vm.ReplyLimit {
				return nil // a failed call commits nothing: what it wrote does not count
			}
		} else {
			out.ok = true
		}
		changes, err := tx.Changes()
		if err != nil {
			return err
		}
		out.result, out.effects = effects(changes, owner, selector, res, before)
		// The method's own slot holds what this run put there, unless the
		// call replaced it: a method that rewrites itself is compared too.
		if now, ok := own.Peek(selector); !ok {
			out.effects = append(out.effects, fmt.Sprintf("the method's own slot %s.%s deleted", owner, selector))
		} else if !image.Equal(now, installed) {
			out.effects = append(out.effects, fmt.Sprintf("the method's own slot %s.%s = %s", owner, selector, canonical(now, "")))
		}
		if res.Output != "" {
			out.effects = append(out.effects, "printed "+res.Output)
		}
		return nil
	})
	if err != nil {
		return outcome{}, fmt.Errorf("replay: %w", err)
	}
	return out, nil
}

// failureOf is a failure's kind and message as the replay compares them
// — the message without its backtrace, whose line numbers differ between
// two versions of a method that fail alike — and whether a limit
// stopped it.
func failureOf(err error) (kind, msg string, limit bool) {
	var le *vm.LimitError
	var ve *vm.Error
	msg = err.Error()
	if errors.As(err, &ve) {
		msg = ve.Msg
	}
	switch {
	case errors.As(err, &le):
		return le.Limit.String(), le.Limit.String() + " exceeded", true
	case errors.Is(err, vm.ErrNoMind):
		return "not understood", msg, false
	}
	return "error", msg, false
}

// effects describes what a call left, canonically: its answer (from
// res), then the arguments if the call changed them (before is their
// canonical form before it: positional, then keywords), the slots of existing objects it set or
// deleted, and the objects it created that any of these reach.
func effects(changes []image.Change, owner store.OID, selector string, res vm.Result, before string) (result string, out []string) {
	k := &canon{fresh: map[store.OID][]image.Slot{}, num: map[store.OID]int{}}
	for _, c := range changes {
		if c.Created {
			k.fresh[c.OID] = c.After
		}
	}
	result = k.of(res.Value, res.Repr)
	args, hasArgs := res.Globals["args"]
	kwargs, hasKwargs := res.Globals["kwargs"]
	switch {
	case res.Globals == nil:
		// A result too big to return: the call's globals were not kept.
	case !hasArgs || !hasKwargs:
		out = append(out, "the arguments now hold what the image cannot keep")
	default:
		if after := k.of(args, "") + " " + k.of(kwargs, ""); after != before {
			out = append(out, "the arguments after the call: "+after)
		}
	}
	for _, c := range changes {
		if !c.Created {
			out = append(out, k.slotChanges(c, owner, selector)...)
		}
	}
	return result, append(out, k.objects()...)
}

// canon writes values so that two runs that did the same compare equal:
// objects the call created are numbered in the order the values written
// reach them.
type canon struct {
	fresh map[store.OID][]image.Slot // the created objects' slots
	num   map[store.OID]int
	order []store.OID // numbered objects, in number order
}

// of writes v; repr stands in for a value the image cannot hold (nil).
func (k *canon) of(v image.Value, repr string) string {
	if v == nil {
		return "<unstorable " + repr + ">"
	}
	var b strings.Builder
	k.write(&b, v, 0)
	return b.String()
}

// slotChanges are the slots of an existing object a call changed, by
// name (the order of writes and of new slots does not count), and its
// parents' order if that changed. The method's own slot is left out.
func (k *canon) slotChanges(c image.Change, owner store.OID, selector string) []string {
	before, after := slotMap(c.Before), slotMap(c.After)
	var out []string
	for _, name := range slices.Sorted(maps.Keys(mergeKeys(before, after))) {
		if c.OID == owner && name == selector {
			continue
		}
		b, had := before[name]
		a, has := after[name]
		switch {
		case has && (!had || !image.Equal(a, b)):
			out = append(out, fmt.Sprintf("%s.%s = %s", c.OID, name, k.of(a, "")))
		case had && !has:
			out = append(out, fmt.Sprintf("%s.%s deleted", c.OID, name))
		}
	}
	if pb, pa := parentNames(c.Before), parentNames(c.After); !slices.Equal(pb, pa) {
		out = append(out, fmt.Sprintf("%s's parents in order: %s", c.OID, strings.Join(pa, ", ")))
	}
	return out
}

// objects writes the created objects numbered so far, and those their
// slots reach, in number order: parent slots in their order (delegation
// follows it), then the others by name.
func (k *canon) objects() []string {
	var out []string
	for i := 0; i < len(k.order); i++ {
		slots := k.fresh[k.order[i]]
		var parts []string
		for _, s := range slots {
			if image.IsParentSlot(s.Name) {
				parts = append(parts, s.Name+"="+k.of(s.Value, ""))
			}
		}
		byName := slices.SortedFunc(slices.Values(slots), func(a, b image.Slot) int { return strings.Compare(a.Name, b.Name) })
		for _, s := range byName {
			if !image.IsParentSlot(s.Name) {
				parts = append(parts, s.Name+"="+k.of(s.Value, ""))
			}
		}
		out = append(out, fmt.Sprintf("new object %d {%s}", i+1, strings.Join(parts, ", ")))
	}
	return out
}

func slotMap(slots []image.Slot) map[string]image.Value {
	m := make(map[string]image.Value, len(slots))
	for _, s := range slots {
		m[s.Name] = s.Value
	}
	return m
}

func mergeKeys(a, b map[string]image.Value) map[string]bool {
	m := make(map[string]bool, len(a)+len(b))
	for n := range a {
		m[n] = true
	}
	for n := range b {
		m[n] = true
	}
	return m
}

func parentNames(slots []image.Slot) []string {
	var out []string
	for _, s := range slots {
		if image.IsParentSlot(s.Name) {
			out = append(out, s.Name)
		}
	}
	return out
}

// canonical writes a value with no objects created by the call in it.
func canonical(v image.Value, repr string) string { return (&canon{}).of(v, repr) }

func (k *canon) write(b *strings.Builder, v image.Value, depth int) {
	if depth > image.MaxDepth {
		b.WriteString("...")
		return
	}
	switch v := v.(type) {
	case image.Ref:
		oid := store.OID(v)
		if _, created := k.fresh[oid]; created {
			n, ok := k.num[oid]
			if !ok {
				n = len(k.order) + 1
				k.num[oid] = n
				k.order = append(k.order, oid)
			}
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
			k.write(b, e, depth+1)
		}
		b.WriteString("]")
	case image.Tuple:
		b.WriteString("(")
		for i, e := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			k.write(b, e, depth+1)
		}
		b.WriteString(")")
	case *image.Dict:
		b.WriteString("{")
		i := 0
		for key, e := range v.All() {
			if i > 0 {
				b.WriteString(", ")
			}
			k.write(b, key, depth+1)
			b.WriteString(": ")
			k.write(b, e, depth+1)
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
