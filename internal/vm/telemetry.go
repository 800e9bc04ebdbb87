package vm

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.starlark.net/starlark"

	"batos/internal/image"
	"batos/internal/store"
)

// MethodKey identifies a method: the object that owns its slot (where
// lookup found it, which may be a parent of the receiver) and its
// selector.
type MethodKey struct {
	Owner    store.OID
	Selector string
}

// Error kinds Counts.ErrorKinds and Sample.ErrorKind record, besides the
// limits', which are named as Limit.String names them ("step limit",
// "time limit", "memory limit", "call-depth limit", "nesting limit").
const (
	// KindError: the method's code failed (fail(), a Starlark runtime
	// error, an error from a nested send or a primitive).
	KindError = "error"
	// KindCancelled: the caller's context ended.
	KindCancelled = "cancelled"
	// KindNotUnderstood: the doesNotUnderstand handler failed a message
	// nothing understood, sent by this method or by one it called.
	KindNotUnderstood = "not understood"
)

// Sampling bounds.
const (
	// maxSamples is how many samples one method keeps per outcome
	// (success, failure) in the lifetime of a Telemetry.
	maxSamples = 16
	// maxSampleSize bounds a sample: the call as image.EncodeState
	// encodes it (receiver, arguments) plus its result's encoding.
	maxSampleSize = 4 << 10
	// maxSampleError bounds the error message a sample keeps.
	maxSampleError = 1 << 10
	// Calls considered for a sample: the first sampleFirst of each
	// outcome, then every sampleEvery-th.
	sampleFirst = 64
	sampleEvery = 256
)

// Telemetry counts method executions: per method (MethodKey) and per
// version of its source, calls, failures by kind, latency and steps, and
// keeps a few real calls as samples for replay. It lives in memory; a
// caller persists what Drain hands it. A VM whose Options.Telemetry is
// nil counts nothing. It is safe for concurrent use, and its methods are
// safe to call on a nil *Telemetry (which holds nothing).
type Telemetry struct {
	mu      sync.RWMutex // guards methods (the map; each entry has its own lock)
	methods map[MethodKey]*methodStats
	pending atomic.Bool // something was counted since the last Drain
}

// NewTelemetry returns an empty Telemetry.
func NewTelemetry() *Telemetry {
	return &Telemetry{methods: map[MethodKey]*methodStats{}}
}

// Counts is what one version of a method did. Version is the first 16
// hex digits of sha256(source): a method replaced under the same
// selector starts a new Counts.
type Counts struct {
	Version    string
	Calls      uint64
	Errors     uint64            // calls that failed, whatever the kind
	ErrorKinds map[string]uint64 // kind -> count; nil when none failed
	LimitHits  uint64            // failures by a limit (steps, time, memory, depth, nesting)
	Latency    Histogram
	StepsTotal uint64 // Starlark steps, nested sends included
	StepsMax   uint64
	// First and Last are when the first and the last call counted here
	// began (the process's clock, not Options.Now).
	First, Last time.Time
}

// Sample is one real call kept for replay.
type Sample struct {
	Receiver store.OID // the object the message was sent to (may differ from the owner)
	Args     []image.Value
	Kwargs   []image.Slot
	// Result is the answer; nil when the call failed. A call whose answer
	// cannot be stored (a function, say) is not sampled at all.
	Result    image.Value
	Error     string    // the error's message (at most 1 KiB of it), "" on success
	ErrorKind string    // "" on success
	Snapshot  store.TID // tx.Snapshot() of the transaction it ran in
	Steps     uint64
	Latency   time.Duration
	At        time.Time
	// Key is a hex digest identifying the call (receiver, args, kwargs):
	// a method's samples of one outcome are distinct by Key.
	Key string
}

// Delta is what one method did since the last Drain.
type Delta struct {
	Key     MethodKey
	Counts  []Counts // one per version seen since the last Drain
	Samples []Sample // new samples since the last Drain
}

// Drain takes what was counted since the last Drain, resetting it, in
// the order of the methods' keys. Samples kept stay kept: a method keeps
// at most its 16 + 16 samples over the Telemetry's lifetime, however
// often it is drained.
func (t *Telemetry) Drain() []Delta {
	if t == nil {
		return nil
	}
	t.pending.Store(false)
	t.mu.RLock()
	all := make([]*methodStats, 0, len(t.methods))
	for _, s := range t.methods {
		all = append(all, s)
	}
	t.mu.RUnlock()
	var out []Delta
	for _, s := range all {
		if d, ok := s.drain(); ok {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b Delta) int {
		return cmp.Or(cmp.Compare(a.Key.Owner, b.Key.Owner), strings.Compare(a.Key.Selector, b.Key.Selector))
	})
	return out
}

// Restore gives back deltas a flush could not save, so nothing counted
// is lost: they are merged into what was counted since (a version's
// Counts added to the same version's), and the next Drain returns them
// again.
func (t *Telemetry) Restore(ds []Delta) {
	if t == nil || len(ds) == 0 {
		return
	}
	for _, d := range ds {
		t.method(d.Key).restore(d)
	}
	t.pending.Store(true)
}

// Pending reports whether anything was counted since the last Drain.
func (t *Telemetry) Pending() bool {
	return t != nil && t.pending.Load()
}

// touch notes that something was counted. It stores only when the flag
// is clear, so busy senders share the flag's cache line for reading.
func (t *Telemetry) touch() {
	if !t.pending.Load() {
		t.pending.Store(true)
	}
}

// method returns the statistics of key, made on first use.
func (t *Telemetry) method(key MethodKey) *methodStats {
	t.mu.RLock()
	s := t.methods[key]
	t.mu.RUnlock()
	if s != nil {
		return s
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if s = t.methods[key]; s == nil {
		s = &methodStats{key: key}
		t.methods[key] = s
	}
	return s
}

// methodStats is one method's telemetry: counts since the last Drain
// and its samples.
type methodStats struct {
	key MethodKey
	// full is set once both outcomes have all their samples; calls is
	// every call counted. Both are read without the lock, before a call,
	// to decide whether to take its arguments.
	full  atomic.Bool
	calls atomic.Uint64

	mu sync.Mutex // guards what follows
	// source is the source last seen, version its version: the version
	// is computed only when the source differs (the image cache hands
	// equal sources as one string, so comparing is cheap).
	source, version string
	cur             *versionStats   // source's counts; nil after a Drain until the next call
	versions        []*versionStats // since the last Drain, oldest first; cur is among them
	outcomes        [2]outcomeSamples
	samples         []Sample // kept since the last Drain
}

// Outcomes, as indexes of methodStats.outcomes.
const (
	outcomeSuccess = 0
	outcomeFailure = 1
)

func outcomeOf(kind string) int {
	if kind == "" {
		return outcomeSuccess
	}
	return outcomeFailure
}

// outcomeSamples is a method's sampling of one outcome, over the
// Telemetry's lifetime.
type outcomeSamples struct {
	calls uint64              // calls with this outcome
	keys  map[string]struct{} // keys of the samples kept, at most maxSamples
}

// versionStats is Counts as counted: the latency in a dense array.
type versionStats struct {
	version               string
	calls, errors, limits uint64
	kinds                 map[string]uint64
	latency               [numBuckets]uint64
	stepsTotal, stepsMax  uint64
	first, last           time.Time
}

// SourceVersion is a method version: the first 16 hex digits of
// sha256(source).
func SourceVersion(source string) string {
	sum := sha256.Sum256([]byte(source))
	return hex.EncodeToString(sum[:8])
}

// methodCall is one method call as the hook saw it.
type methodCall struct {
	receiver store.OID
	args     starlark.Tuple
	kwargs   []starlark.Tuple
	before   *callValues // the arguments taken before the call, if they were
	result   starlark.Value
	err      error
	kind     string // "" on success
	start    time.Time
	latency  time.Duration
	steps    uint64
}

// observe runs m's call and counts it. The common path costs a map
// lookup, two clock readings, a lock and a few counter updates; a sample
// is taken only for the calls considered (see count), and arguments that
// the method could change (a list, a dict) are taken before the call
// only when that may be needed.
func (t *Telemetry) observe(m *boundMethod, thread *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	ex := m.self.ex
	s := t.method(MethodKey{Owner: m.owner, Selector: m.name})
	c := methodCall{receiver: m.self.obj.OID(), args: args, kwargs: kwargs}
	changeable := false
	if !s.full.Load() && mayChange(args, kwargs) {
		// Taken after the call, they could be what the method made of
		// them: take them now, for the calls the sampling considers
		// (counted over both outcomes, which are not known yet).
		changeable = true
		if considered(s.calls.Load()) {
			c.before = ex.sampleArgs(args, kwargs)
		}
	}
	steps := thread.ExecutionSteps()
	c.start = time.Now()
	c.result, c.err = m.call(thread, args, kwargs)
	c.latency = time.Since(c.start)
	c.steps = thread.ExecutionSteps() - steps
	var limit bool
	if c.err != nil {
		c.kind, limit = ex.failureOf(c.err)
	}
	want := s.count(m.source, &c, limit, changeable)
	observeMethod(c.kind, c.latency)
	t.touch()
	if want {
		t.sample(ex, s, &c)
	}
	return c.result, c.err
}

// count adds c to the counts of source's version, and reports whether
// a sample of c is wanted: its outcome has room, the call is considered
// (the first sampleFirst of its outcome, then every sampleEvery-th; for
// changeable arguments, whether they were taken before it), and it was
// not cancelled (the caller's doing, nothing to replay).
func (s *methodStats) count(source string, c *methodCall, limit, changeable bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil || source != s.source {
		s.useVersionLocked(source)
	}
	v := s.cur
	v.calls++
	if c.kind != "" {
		v.errors++
		if limit {
			v.limits++
		}
		if v.kinds == nil {
			v.kinds = map[string]uint64{}
		}
		v.kinds[c.kind]++
	}
	v.latency[BucketOf(c.latency)]++
	v.stepsTotal += c.steps
	v.stepsMax = max(v.stepsMax, c.steps)
	if v.first.IsZero() || c.start.Before(v.first) {
		v.first = c.start
	}
	if c.start.After(v.last) {
		v.last = c.start
	}
	s.calls.Add(1)
	o := &s.outcomes[outcomeOf(c.kind)]
	n := o.calls
	o.calls++
	switch {
	case c.kind == KindCancelled || len(o.keys) >= maxSamples:
		return false
	case changeable:
		return c.before != nil
	}
	return considered(n)
}

// useVersionLocked makes source's version the current one, finding its
// counts since the last Drain or starting them.
func (s *methodStats) useVersionLocked(source string) {
	if source != s.source || s.version == "" {
		s.source, s.version = source, SourceVersion(source)
	}
	if s.cur = s.findLocked(s.version); s.cur == nil {
		s.cur = &versionStats{version: s.version}
		s.versions = append(s.versions, s.cur)
	}
}

func (s *methodStats) findLocked(version string) *versionStats {
	for _, v := range s.versions {
		if v.version == version {
			return v
		}
	}
	return nil
}

// considered reports whether the call after n others of its kind is
// considered for a sample.
func considered(n uint64) bool { return n < sampleFirst || n%sampleEvery == 0 }

// drain takes s's counts and new samples, if it has any.
func (s *methodStats) drain() (Delta, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.versions) == 0 && len(s.samples) == 0 {
		return Delta{}, false
	}
	d := Delta{Key: s.key, Samples: s.samples}
	for _, v := range s.versions {
		d.Counts = append(d.Counts, v.counts())
	}
	s.versions, s.cur, s.samples = nil, nil, nil
	return d, true
}

// counts is v as Counts. It hands over v's kinds map: v is dropped.
func (v *versionStats) counts() Counts {
	c := Counts{
		Version: v.version, Calls: v.calls, Errors: v.errors, ErrorKinds: v.kinds, LimitHits: v.limits,
		StepsTotal: v.stepsTotal, StepsMax: v.stepsMax, First: v.first.Round(0), Last: v.last.Round(0),
	}
	for i, n := range v.latency {
		if n > 0 {
			if c.Latency.Buckets == nil {
				c.Latency.Buckets = map[int]uint64{}
			}
			c.Latency.Buckets[i] = n
		}
	}
	return c
}

// restore merges d back: its counts before those counted since, its
// samples before the new ones.
func (s *methodStats) restore(d Delta) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var older []*versionStats
	for _, c := range d.Counts {
		v := s.findLocked(c.Version)
		if v == nil {
			if i := slices.IndexFunc(older, func(o *versionStats) bool { return o.version == c.Version }); i >= 0 {
				v = older[i]
			} else {
				v = &versionStats{version: c.Version}
				older = append(older, v)
			}
		}
		v.merge(c)
	}
	s.versions = append(older, s.versions...)
	s.samples = append(slices.Clone(d.Samples), s.samples...)
	for _, smp := range d.Samples {
		o := &s.outcomes[outcomeOf(smp.ErrorKind)]
		if o.keys == nil {
			o.keys = map[string]struct{}{}
		}
		o.keys[smp.Key] = struct{}{}
	}
	s.noteFullLocked()
}

// merge adds c to v.
func (v *versionStats) merge(c Counts) {
	v.calls += c.Calls
	v.errors += c.Errors
	v.limits += c.LimitHits
	for k, n := range c.ErrorKinds {
		if v.kinds == nil {
			v.kinds = map[string]uint64{}
		}
		v.kinds[k] += n
	}
	for i, n := range c.Latency.Buckets {
		v.latency[min(max(i, 0), numBuckets-1)] += n
	}
	v.stepsTotal += c.StepsTotal
	v.stepsMax = max(v.stepsMax, c.StepsMax)
	if !c.First.IsZero() && (v.first.IsZero() || c.First.Before(v.first)) {
		v.first = c.First
	}
	if c.Last.After(v.last) {
		v.last = c.Last
	}
}

// failureOf names how a method's call failed with err, and whether a
// limit stopped it. A limit that tripped, or the caller's end, is the
// execution's (the error that comes back through Starlark only says it
// was cancelled); the rest is read from err's chain.
func (ex *execution) failureOf(err error) (kind string, limit bool) {
	ex.mu.Lock()
	tripped, cancelled := ex.tripped, ex.cancelled
	ex.mu.Unlock()
	var le *LimitError
	switch {
	case cancelled != nil:
		return KindCancelled, false
	case tripped != nil:
		return tripped.Limit.String(), true
	case errors.As(err, &le):
		return le.Limit.String(), true
	case strings.Contains(err.Error(), "Starlark stack overflow"):
		// As fail reports it: Starlark's own recursion limit.
		return DepthLimit.String(), true
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return KindCancelled, false
	case ex.notUnderstood != nil && errors.Is(err, ex.notUnderstood):
		return KindNotUnderstood, false
	}
	return KindError, false
}

// failureMessage is what a sample says of err: the limit or the
// caller's end rather than Starlark's "cancelled".
func (ex *execution) failureMessage(err error) string {
	ex.mu.Lock()
	tripped, cancelled := ex.tripped, ex.cancelled
	ex.mu.Unlock()
	msg := err.Error()
	if cancelled != nil {
		msg = cancelled.Error()
	} else if tripped != nil {
		msg = tripped.Error()
	}
	if len(msg) <= maxSampleError {
		return msg
	}
	cut := maxSampleError
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + " ..."
}

// callValues are a call's arguments as image values.
type callValues struct {
	args   []image.Value
	kwargs []image.Slot
}

// sample keeps c as a sample of s if it can be stored and is new. A
// call whose arguments or answer cannot be stored, or whose encoding
// passes maxSampleSize, is skipped.
func (t *Telemetry) sample(ex *execution, s *methodStats, c *methodCall) {
	vals := c.before
	if vals == nil {
		if vals = ex.sampleArgs(c.args, c.kwargs); vals == nil {
			return
		}
	}
	smp := Sample{
		Receiver: c.receiver, Args: vals.args, Kwargs: vals.kwargs,
		Snapshot: ex.tx.Snapshot(), Steps: c.steps, Latency: c.latency, At: c.start.Round(0),
	}
	resultSize := 0
	if c.kind == "" {
		budget := maxSampleSize
		r, ok := ex.sampleValue(c.result, &budget)
		if !ok {
			return
		}
		enc, err := image.AppendValue(nil, r)
		if err != nil {
			return
		}
		smp.Result, resultSize = r, len(enc)
	} else {
		smp.Error, smp.ErrorKind = ex.failureMessage(c.err), c.kind
	}
	enc, err := image.EncodeState(callSlots(c.receiver, vals))
	if err != nil || len(enc)+resultSize > maxSampleSize {
		return
	}
	sum := sha256.Sum256(enc)
	smp.Key = hex.EncodeToString(sum[:])
	if s.keep(smp) {
		t.touch()
	}
}

// callSlots is a call as slots, for its key and size: the receiver
// (self), the positional arguments by position (1, 2, ...) and the
// keyword arguments by name and "=", which no position is.
func callSlots(receiver store.OID, vals *callValues) []image.Slot {
	slots := make([]image.Slot, 0, 1+len(vals.args)+len(vals.kwargs))
	slots = append(slots, image.Slot{Name: "self", Value: image.Ref(receiver)})
	for i, a := range vals.args {
		slots = append(slots, image.Slot{Name: strconv.Itoa(i + 1), Value: a})
	}
	for _, kw := range vals.kwargs {
		slots = append(slots, image.Slot{Name: kw.Name + "=", Value: kw.Value})
	}
	return slots
}

// keep adds smp to s's samples unless its outcome is full or has its
// key already, and reports whether it did.
func (s *methodStats) keep(smp Sample) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := &s.outcomes[outcomeOf(smp.ErrorKind)]
	if len(o.keys) >= maxSamples {
		return false
	}
	if _, dup := o.keys[smp.Key]; dup {
		return false
	}
	if o.keys == nil {
		o.keys = map[string]struct{}{}
	}
	o.keys[smp.Key] = struct{}{}
	s.samples = append(s.samples, smp)
	s.noteFullLocked()
	return true
}

// noteFullLocked sets full once both outcomes have all their samples.
func (s *methodStats) noteFullLocked() {
	if len(s.outcomes[outcomeSuccess].keys) >= maxSamples && len(s.outcomes[outcomeFailure].keys) >= maxSamples {
		s.full.Store(true)
	}
}

// sampleArgs converts a call's arguments for a sample, or returns nil
// when they cannot be stored or together pass maxSampleSize.
func (ex *execution) sampleArgs(args starlark.Tuple, kwargs []starlark.Tuple) *callValues {
	budget := maxSampleSize
	vals := &callValues{args: make([]image.Value, len(args))}
	for i, a := range args {
		v, ok := ex.sampleValue(a, &budget)
		if !ok {
			return nil
		}
		vals.args[i] = v
	}
	for _, kw := range kwargs {
		v, ok := ex.sampleValue(kw[1], &budget)
		if !ok {
			return nil
		}
		vals.kwargs = append(vals.kwargs, image.Slot{Name: string(kw[0].(starlark.String)), Value: v})
	}
	return vals
}

// sampleValue converts v for a sample, charging it to budget. It uses
// the execution's converter but not toImage's path, whose reservation
// of memory counts toward the execution's allocations: sampling must not
// change what the execution does. fitsSample bounds the work first.
func (ex *execution) sampleValue(v starlark.Value, budget *int) (image.Value, bool) {
	if !fitsSample(v, budget, 0) {
		return nil, false
	}
	iv, err := ex.convert(v, 0)
	return iv, err == nil
}

// fitsSample reports whether v may fit a sample: it walks v charging
// each value a byte and each string its length to budget, and refuses v
// once budget is spent or v nests deeper than the image holds, so that a
// huge value, or one that contains itself, costs at most the budget to
// refuse.
func fitsSample(v starlark.Value, budget *int, depth int) bool {
	*budget--
	if *budget < 0 || depth > image.MaxDepth {
		return false
	}
	switch v := v.(type) {
	case starlark.String:
		*budget -= len(v)
	case starlark.Bytes:
		*budget -= len(v)
	case starlark.Int:
		if _, ok := v.Int64(); !ok {
			*budget -= v.BigInt().BitLen() / 8
		}
	case *methodValue:
		*budget -= len(v.source)
	case *starlark.List:
		if v.Len() > *budget {
			return false
		}
		for i := range v.Len() {
			if !fitsSample(v.Index(i), budget, depth+1) {
				return false
			}
		}
	case starlark.Tuple:
		if len(v) > *budget {
			return false
		}
		for _, e := range v {
			if !fitsSample(e, budget, depth+1) {
				return false
			}
		}
	case *starlark.Dict:
		if 2*v.Len() > *budget {
			return false
		}
		for _, item := range v.Items() {
			if !fitsSample(item[0], budget, depth+1) || !fitsSample(item[1], budget, depth+1) {
				return false
			}
		}
	}
	return *budget >= 0
}

// mayChange reports whether a call's arguments hold something the
// method could change in place: a list, a dict or a set, in them or in
// a tuple of them (a long or deep tuple is assumed to).
func mayChange(args starlark.Tuple, kwargs []starlark.Tuple) bool {
	for _, a := range args {
		if changeable(a, 0) {
			return true
		}
	}
	for _, kw := range kwargs {
		if changeable(kw[1], 0) {
			return true
		}
	}
	return false
}

func changeable(v starlark.Value, depth int) bool {
	switch v := v.(type) {
	case *starlark.List, *starlark.Dict, *starlark.Set:
		return true
	case starlark.Tuple:
		if depth >= 4 || len(v) > 16 {
			return true
		}
		for _, e := range v {
			if changeable(e, depth+1) {
				return true
			}
		}
	}
	return false
}

// Histogram counts durations in quarter-octave buckets: bucket i holds
// the durations from 2^(i/4) ns up to 2^((i+1)/4) ns, so each bucket's
// upper bound is 2^(1/4) times its lower, a quantile read from it is
// within ~19% (the middle of the bucket, within 9%), and histograms
// merge by adding buckets. Buckets is sparse: index -> count. The zero
// Histogram is empty; a Histogram is not safe for concurrent use.
type Histogram struct {
	Buckets map[int]uint64
}

// numBuckets is how many buckets cover every duration: the last starts
// at 2^(251/4) ns (about 245 years).
const numBuckets = 252

// bucketLow[i] is the shortest duration in bucket i, in nanoseconds:
// 2^(i/4) rounded up (bucket 0 starts at 0). Buckets 1 to 3 hold no
// whole nanosecond and are empty. Both BucketOf and BucketBounds read
// this table, so they agree to the nanosecond.
var bucketLow = func() (low [numBuckets]int64) {
	for i := 1; i < numBuckets; i++ {
		low[i] = int64(math.Ceil(math.Ldexp(math.Pow(2, float64(i%4)/4), i/4)))
	}
	return low
}()

// BucketOf is the bucket d falls in; durations under 2 ns (and negative
// ones) fall in bucket 0.
func BucketOf(d time.Duration) int {
	if d < 2 {
		return 0
	}
	octave := bits.Len64(uint64(d)) - 1 // 2^octave <= d < 2^(octave+1)
	first := 4 * octave
	i := first
	for j := first + 1; j < first+4 && j < numBuckets && int64(d) >= bucketLow[j]; j++ {
		i = j
	}
	return i
}

// BucketBounds is the range of bucket i: lo <= d < hi for every d with
// BucketOf(d) == i (the last bucket holds the longest duration too). An
// index outside the buckets is taken as the nearest one.
func BucketBounds(i int) (lo, hi time.Duration) {
	i = min(max(i, 0), numBuckets-1)
	if i == numBuckets-1 {
		return time.Duration(bucketLow[i]), time.Duration(math.MaxInt64)
	}
	return time.Duration(bucketLow[i]), time.Duration(bucketLow[i+1])
}

// Add counts d.
func (h *Histogram) Add(d time.Duration) {
	if h.Buckets == nil {
		h.Buckets = map[int]uint64{}
	}
	h.Buckets[BucketOf(d)]++
}

// Merge adds o's counts to h's.
func (h *Histogram) Merge(o Histogram) {
	for i, n := range o.Buckets {
		if n == 0 {
			continue
		}
		if h.Buckets == nil {
			h.Buckets = map[int]uint64{}
		}
		h.Buckets[i] += n
	}
}

// Count is how many durations h counted.
func (h Histogram) Count() uint64 {
	var n uint64
	for _, c := range h.Buckets {
		n += c
	}
	return n
}

// Quantile estimates the q-quantile (0 <= q <= 1) of the durations h
// counted: the middle (geometric) of the bucket holding it. It is 0 for
// an empty histogram.
func (h Histogram) Quantile(q float64) time.Duration {
	total := h.Count()
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(min(max(q, 0), 1) * float64(total)))
	rank = min(max(rank, 1), total)
	idx := make([]int, 0, len(h.Buckets))
	for i, n := range h.Buckets {
		if n > 0 {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx)
	var seen uint64
	for _, i := range idx {
		if seen += h.Buckets[i]; seen >= rank {
			return bucketMiddle(i)
		}
	}
	return bucketMiddle(idx[len(idx)-1])
}

// bucketMiddle is the geometric middle of bucket i.
func bucketMiddle(i int) time.Duration {
	lo, hi := BucketBounds(i)
	if lo <= 0 || hi <= lo {
		return lo
	}
	return time.Duration(math.Sqrt(float64(lo) * float64(hi)))
}
