package heartbeat

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"batos/internal/image"
	"batos/internal/store"
	"batos/internal/vm"
)

// Bounds on what the image keeps of a method's telemetry.
const (
	// maxVersions is how many versions of a method keep their counts:
	// the oldest give way.
	maxVersions = 8
	// maxSamplesPerOutcome bounds a method's recorded calls that
	// succeeded, and apart from them those that failed.
	maxSamplesPerOutcome = 16
)

// methodKey is how the telemetry object's "methods" dict names a
// method's record: "oid:12 average".
func methodKey(owner store.OID, selector string) string { return owner.String() + " " + selector }

// Version names a method's source as the VM's telemetry counts it.
func Version(source string) string { return vm.SourceVersion(source) }

// telemetryObject is the root's "telemetry" object.
func telemetryObject(tx *image.Tx) (*image.Object, error) {
	return rootObject(tx, "telemetry")
}

func rootObject(tx *image.Tx, name string) (*image.Object, error) {
	root, err := tx.Root()
	if err != nil {
		return nil, err
	}
	v, ok := root.Get(name)
	if !ok {
		return nil, fmt.Errorf("heartbeat: the image has no %s object (awaken it with this batos)", name)
	}
	o, err := tx.Deref(v)
	if err != nil {
		return nil, fmt.Errorf("heartbeat: the root's %s: %w", name, err)
	}
	return o, nil
}

// methodsIndex is the telemetry object's dict of records.
func methodsIndex(t *image.Object) *image.Dict {
	if v, ok := t.Get("methods"); ok {
		if d, isDict := v.(*image.Dict); isDict {
			return d
		}
	}
	return &image.Dict{}
}

// Save merges what the VM counted into the image, in tx: each method's
// counts into its record (by version), its new samples into its samples
// (distinct, bounded). A method whose owner is gone (it was created in
// a transaction that rolled back), and a sample naming an object that
// does not exist, are dropped: they describe nothing that can be
// replayed.
func Save(tx *image.Tx, ds []vm.Delta) error {
	t, err := telemetryObject(tx)
	if err != nil {
		return err
	}
	index := methodsIndex(t)
	added := false
	for _, d := range ds {
		if !exists(tx, d.Key.Owner) {
			continue
		}
		key := image.String(methodKey(d.Key.Owner, d.Key.Selector))
		var rec *image.Object
		if v, ok := index.Get(key); ok {
			// Only a record of this method is written: an entry a person
			// pointed elsewhere (at calc, at the root) gets a new record.
			if o, err := tx.Deref(v); err == nil && isRecordOf(o, d.Key) {
				rec = o
			}
		}
		if rec == nil {
			if rec, err = tx.New(
				image.Slot{Name: "name", Value: image.String("telemetry of " + methodKey(d.Key.Owner, d.Key.Selector))},
				image.Slot{Name: "owner", Value: image.Ref(d.Key.Owner)},
				image.Slot{Name: "selector", Value: image.String(d.Key.Selector)},
			); err != nil {
				return err
			}
			if err := index.Set(key, rec.Ref()); err != nil {
				return err
			}
			added = true
		}
		if err := mergeCounts(rec, d.Counts); err != nil {
			return fmt.Errorf("telemetry of %s: %w", key, err)
		}
		if err := mergeSamples(tx, rec, d.Samples); err != nil {
			return fmt.Errorf("telemetry of %s: %w", key, err)
		}
	}
	if added {
		return t.Set("methods", index)
	}
	return nil
}

// isRecordOf reports whether o is the telemetry record of method k: its
// owner and selector slots name k.
func isRecordOf(o *image.Object, k vm.MethodKey) bool {
	owner, _ := o.Get("owner")
	selector, _ := o.Get("selector")
	return image.Equal(owner, image.Ref(k.Owner)) && image.Equal(selector, image.String(k.Selector))
}

func exists(tx *image.Tx, oid store.OID) bool {
	_, err := tx.Object(oid)
	return err == nil
}

// mergeCounts adds counts to the record's versions.
func mergeCounts(rec *image.Object, counts []vm.Counts) error {
	if len(counts) == 0 {
		return nil
	}
	versions := decodeVersions(rec)
	for _, c := range counts {
		i := slices.IndexFunc(versions, func(v vm.Counts) bool { return v.Version == c.Version })
		if i < 0 {
			versions = append(versions, vm.Counts{Version: c.Version})
			i = len(versions) - 1
		}
		addCounts(&versions[i], c)
	}
	if n := len(versions) - maxVersions; n > 0 {
		versions = versions[n:]
	}
	l := &image.List{}
	for _, v := range versions {
		d, err := encodeCounts(v)
		if err != nil {
			return err
		}
		l.Elems = append(l.Elems, d)
	}
	return rec.Set("versions", l)
}

func addCounts(into *vm.Counts, c vm.Counts) {
	into.Calls += c.Calls
	into.Errors += c.Errors
	into.LimitHits += c.LimitHits
	if len(c.ErrorKinds) > 0 && into.ErrorKinds == nil {
		into.ErrorKinds = map[string]uint64{}
	}
	for k, n := range c.ErrorKinds {
		into.ErrorKinds[k] += n
	}
	into.Latency.Merge(c.Latency)
	into.StepsTotal += c.StepsTotal
	into.StepsMax = max(into.StepsMax, c.StepsMax)
	if into.First.IsZero() || (!c.First.IsZero() && c.First.Before(into.First)) {
		into.First = c.First
	}
	if c.Last.After(into.Last) {
		into.Last = c.Last
	}
}

func encodeCounts(c vm.Counts) (*image.Dict, error) {
	kinds := &image.Dict{}
	for _, k := range slices.Sorted(maps.Keys(c.ErrorKinds)) {
		if err := kinds.Set(image.String(k), image.Int(c.ErrorKinds[k])); err != nil {
			return nil, err
		}
	}
	latency := &image.Dict{}
	for _, b := range slices.Sorted(maps.Keys(c.Latency.Buckets)) {
		if err := latency.Set(image.Int(b), image.Int(c.Latency.Buckets[b])); err != nil {
			return nil, err
		}
	}
	return dictOf(
		"version", image.String(c.Version), "calls", image.Int(c.Calls), "errors", image.Int(c.Errors),
		"error_kinds", kinds, "limit_hits", image.Int(c.LimitHits), "latency", latency,
		"steps_total", image.Int(c.StepsTotal), "steps_max", image.Int(c.StepsMax),
		"first", timeValue(c.First), "last", timeValue(c.Last),
	)
}

// decodeVersions reads a record's counts. Telemetry is advisory: a
// version a user mangled from the REPL is skipped, not an error.
func decodeVersions(rec *image.Object) []vm.Counts {
	v, _ := rec.Get("versions")
	l, _ := v.(*image.List)
	if l == nil {
		return nil
	}
	// The last versions are kept: a list a person grew to a million
	// entries reads as what a flush would leave of it.
	var out []vm.Counts
	for i := len(l.Elems) - 1; i >= 0 && len(out) < maxVersions; i-- {
		d, ok := l.Elems[i].(*image.Dict)
		if !ok {
			continue
		}
		c := vm.Counts{
			Version: str(d, "version"), Calls: uintOf(d, "calls"), Errors: uintOf(d, "errors"),
			LimitHits: uintOf(d, "limit_hits"), StepsTotal: uintOf(d, "steps_total"), StepsMax: uintOf(d, "steps_max"),
			First: timeOf(d, "first"), Last: timeOf(d, "last"),
		}
		if c.Version == "" {
			continue
		}
		if kinds, ok := get(d, "error_kinds").(*image.Dict); ok {
			c.ErrorKinds = map[string]uint64{}
			for k, n := range kinds.All() {
				ks, isString := k.(image.String)
				ni, isInt := n.(image.Int)
				if isString && isInt && ni > 0 && errorKinds[string(ks)] {
					c.ErrorKinds[string(ks)] = uint64(ni)
				}
			}
		}
		if lat, ok := get(d, "latency").(*image.Dict); ok {
			c.Latency.Buckets = map[int]uint64{}
			for k, n := range lat.All() {
				ki, isInt := k.(image.Int)
				ni, isCount := n.(image.Int)
				if isInt && isCount && ni > 0 && ki >= 0 && ki < 1<<16 {
					c.Latency.Buckets[int(ki)] = uint64(ni)
				}
			}
		}
		out = append(out, c)
	}
	slices.Reverse(out)
	return out
}

// errorKinds are the kinds of error the VM counts: a record's others
// were written by a person, and are skipped (a "$ref" one would make the
// facts an audit keeps unstorable).
var errorKinds = func() map[string]bool {
	kinds := map[string]bool{vm.KindError: true, vm.KindCancelled: true, vm.KindNotUnderstood: true}
	for l := vm.Limit(1); !strings.HasPrefix(l.String(), "Limit("); l++ {
		kinds[l.String()] = true
	}
	return kinds
}()

// samplesObject is a record's samples object, created on first use. An
// object that is no samples object (a person pointed the slot at calc,
// or at the record itself) is never read nor written: with create, a new
// one takes its place.
func samplesObject(tx *image.Tx, rec *image.Object, create bool) (*image.Object, error) {
	if v, ok := rec.Get("samples"); ok {
		if o, err := tx.Deref(v); err == nil && isSamplesObject(o, rec) {
			return o, nil
		}
	}
	if !create {
		return nil, nil
	}
	o, err := tx.New(image.Slot{Name: "samples", Value: &image.List{}})
	if err != nil {
		return nil, err
	}
	return o, rec.Set("samples", o.Ref())
}

// isSamplesObject reports whether o is a samples object other than rec:
// a list in its samples slot, and no slot but that and a name.
func isSamplesObject(o, rec *image.Object) bool {
	if o.OID() == rec.OID() {
		return false
	}
	for _, s := range o.Slots() {
		switch s.Name {
		case "name":
		case "samples":
			if _, ok := s.Value.(*image.List); !ok {
				return false
			}
		default:
			return false
		}
	}
	_, ok := o.Get("samples")
	return ok
}

// mergeSamples adds new samples to the record's, each call once, at most
// maxSamplesPerOutcome of each outcome. Only when one is added is the
// samples object written.
func mergeSamples(tx *image.Tx, rec *image.Object, samples []vm.Sample) error {
	if len(samples) == 0 {
		return nil
	}
	so, err := samplesObject(tx, rec, true)
	if err != nil {
		return err
	}
	have := decodeSamples(so)
	seen := map[string]bool{}
	count := map[bool]int{}
	for _, s := range have {
		seen[sampleID(s)] = true
		count[s.Error == "" && s.ErrorKind == ""]++
	}
	l, _ := so.Get("samples")
	list, _ := l.(*image.List)
	if list == nil {
		list = &image.List{}
	}
	added := false
	for _, s := range samples {
		ok := s.Error == "" && s.ErrorKind == ""
		if seen[sampleID(s)] || count[ok] >= maxSamplesPerOutcome || !refsExist(tx, s) {
			continue
		}
		d, err := encodeSample(s)
		if err != nil {
			continue // a value the image cannot keep: not a sample
		}
		list.Elems = append(list.Elems, d)
		seen[sampleID(s)] = true
		count[ok]++
		added = true
	}
	if !added {
		return nil
	}
	return so.Set("samples", list)
}

// sampleID tells samples apart: the same call may be kept once
// succeeding and once failing (the state it ran on differed).
func sampleID(s vm.Sample) string {
	if s.Error == "" && s.ErrorKind == "" {
		return "ok " + s.Key
	}
	return "failed " + s.Key
}

// refsExist reports whether every object a sample names exists: one
// created by the call it records is gone if that call rolled back.
func refsExist(tx *image.Tx, s vm.Sample) bool {
	if !exists(tx, s.Receiver) {
		return false
	}
	var oids []store.OID
	for _, a := range s.Args {
		oids = appendRefs(oids, a, 0)
	}
	for _, kw := range s.Kwargs {
		oids = appendRefs(oids, kw.Value, 0)
	}
	if s.Result != nil {
		oids = appendRefs(oids, s.Result, 0)
	}
	for _, oid := range oids {
		if !exists(tx, oid) {
			return false
		}
	}
	return true
}

func appendRefs(out []store.OID, v image.Value, depth int) []store.OID {
	if depth > image.MaxDepth {
		return out
	}
	switch v := v.(type) {
	case image.Ref:
		return append(out, store.OID(v))
	case *image.List:
		for _, e := range v.Elems {
			out = appendRefs(out, e, depth+1)
		}
	case image.Tuple:
		for _, e := range v {
			out = appendRefs(out, e, depth+1)
		}
	case *image.Dict:
		for k, e := range v.All() {
			out = appendRefs(appendRefs(out, k, depth+1), e, depth+1)
		}
	}
	return out
}

func encodeSample(s vm.Sample) (*image.Dict, error) {
	kwargs := &image.Dict{}
	for _, kw := range s.Kwargs {
		if err := kwargs.Set(image.String(kw.Name), kw.Value); err != nil {
			return nil, err
		}
	}
	var result image.Value = image.None
	if s.Result != nil {
		result = s.Result
	}
	return dictOf(
		"key", image.String(s.Key), "receiver", image.Ref(s.Receiver), "args", image.NewList(s.Args...),
		"kwargs", kwargs, "ok", image.Bool(s.Error == "" && s.ErrorKind == ""), "result", result,
		"error", image.String(s.Error), "error_kind", image.String(s.ErrorKind),
		"snapshot", image.String(s.Snapshot.String()), "steps", image.Int(s.Steps),
		"latency_us", image.Int(s.Latency.Microseconds()), "at", timeValue(s.At),
	)
}

// decodeSamples reads a samples object; a sample a user mangled is
// skipped.
func decodeSamples(so *image.Object) []vm.Sample {
	if so == nil {
		return nil
	}
	v, _ := so.Get("samples")
	l, _ := v.(*image.List)
	if l == nil {
		return nil
	}
	// At most maxSamplesPerOutcome of each outcome are read, as many as a
	// flush keeps: a list a person grew holds no more calls to replay.
	var out []vm.Sample
	kept := map[bool]int{}
	for _, e := range l.Elems {
		if kept[true] >= maxSamplesPerOutcome && kept[false] >= maxSamplesPerOutcome {
			break
		}
		d, ok := e.(*image.Dict)
		if !ok {
			continue
		}
		recv, ok := get(d, "receiver").(image.Ref)
		args, isList := get(d, "args").(*image.List)
		if !ok || !isList {
			continue
		}
		s := vm.Sample{
			Receiver: store.OID(recv), Args: slices.Clone(args.Elems), Key: str(d, "key"),
			Error: str(d, "error"), ErrorKind: str(d, "error_kind"), Steps: uintOf(d, "steps"),
			Latency: time.Duration(uintOf(d, "latency_us")) * time.Microsecond, At: timeOf(d, "at"),
		}
		if kw, ok := get(d, "kwargs").(*image.Dict); ok {
			for k, kv := range kw.All() {
				if name, isString := k.(image.String); isString {
					s.Kwargs = append(s.Kwargs, image.Slot{Name: string(name), Value: kv})
				}
			}
		}
		if okv, _ := get(d, "ok").(image.Bool); okv {
			s.Result = get(d, "result")
			s.Error, s.ErrorKind = "", ""
		} else if s.Error == "" && s.ErrorKind == "" {
			s.ErrorKind = "error" // recorded as failed, whatever it says
		}
		if tid, err := store.ParseTID(str(d, "snapshot")); err == nil {
			s.Snapshot = tid
		}
		ok = s.Error == "" && s.ErrorKind == ""
		if kept[ok] >= maxSamplesPerOutcome {
			continue
		}
		kept[ok]++
		out = append(out, s)
	}
	return out
}

// Samples reads the recorded calls of selector owned by owner.
func Samples(tx *image.Tx, owner store.OID, selector string) ([]vm.Sample, error) {
	rec, err := record(tx, owner, selector)
	if err != nil || rec == nil {
		return nil, err
	}
	so, err := samplesObject(tx, rec, false)
	if err != nil {
		return nil, err
	}
	return decodeSamples(so), nil
}

// record finds the telemetry record of a method, nil if it has none.
func record(tx *image.Tx, owner store.OID, selector string) (*image.Object, error) {
	t, err := telemetryObject(tx)
	if err != nil {
		return nil, err
	}
	v, ok := methodsIndex(t).Get(image.String(methodKey(owner, selector)))
	if !ok {
		return nil, nil
	}
	rec, err := tx.Deref(v)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, image.ErrNotObject) {
		return nil, nil
	}
	if err != nil || !isRecordOf(rec, vm.MethodKey{Owner: owner, Selector: selector}) {
		return nil, err
	}
	return rec, nil
}

// dictOf builds a dict from alternating string keys and values.
func dictOf(kv ...any) (*image.Dict, error) {
	d := &image.Dict{}
	for i := 0; i+1 < len(kv); i += 2 {
		if err := d.Set(image.String(kv[i].(string)), kv[i+1].(image.Value)); err != nil {
			return nil, fmt.Errorf("%s: %w", kv[i], err)
		}
	}
	return d, nil
}

func get(d *image.Dict, key string) image.Value {
	v, _ := d.Get(image.String(key))
	return v
}

func str(d *image.Dict, key string) string {
	s, _ := get(d, key).(image.String)
	return string(s)
}

func intOf(d *image.Dict, key string) int64 {
	n, _ := get(d, key).(image.Int)
	return int64(n)
}

func uintOf(d *image.Dict, key string) uint64 {
	return uint64(max(intOf(d, key), 0))
}

func timeOf(d *image.Dict, key string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, str(d, key))
	return t
}

func timeValue(t time.Time) image.Value {
	if t.IsZero() {
		return image.None
	}
	return image.String(t.UTC().Format(time.RFC3339Nano))
}
