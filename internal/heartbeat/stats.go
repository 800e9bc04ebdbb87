package heartbeat

import (
	"cmp"
	"slices"
	"time"

	"batos/internal/image"
	"batos/internal/store"
)

// MethodStats is what the telemetry knows of one version of a method.
type MethodStats struct {
	Owner store.OID `json:"owner"`
	// OwnerName is the owner's name slot or root name, if it has one.
	OwnerName string `json:"owner_name,omitempty"`
	Selector  string `json:"selector"`
	Version   string `json:"version"`
	// Current says whether the slot holds this version now; Deprecated
	// whether the method there is marked deprecated; Missing whether the
	// slot holds no method any more.
	Current    bool              `json:"current"`
	Deprecated bool              `json:"deprecated"`
	Missing    bool              `json:"missing"`
	Calls      uint64            `json:"calls"`
	Errors     uint64            `json:"errors"`
	ErrorKinds map[string]uint64 `json:"error_kinds,omitempty"`
	LimitHits  uint64            `json:"limit_hits"`
	P50        time.Duration     `json:"p50_ns"`
	P99        time.Duration     `json:"p99_ns"`
	MeanSteps  float64           `json:"mean_steps"`
	MaxSteps   uint64            `json:"max_steps"`
	First      time.Time         `json:"first"`
	Last       time.Time         `json:"last"`
	// Samples and FailedSamples count the recorded calls kept for replay.
	Samples       int `json:"samples"`
	FailedSamples int `json:"failed_samples"`
}

// ErrorRate is the share of calls that failed.
func (s MethodStats) ErrorRate() float64 {
	if s.Calls == 0 {
		return 0
	}
	return float64(s.Errors) / float64(s.Calls)
}

// Label names the method as people read it: "calc.average".
func (s MethodStats) Label() string {
	return cmp.Or(s.OwnerName, s.Owner.String()) + "." + s.Selector
}

// Stats reads the telemetry of every method (of owner's only, when it is
// not 0), one entry per version counted, the current versions first,
// most-called first.
func Stats(tx *image.Tx, owner store.OID) ([]MethodStats, error) {
	t, err := telemetryObject(tx)
	if err != nil {
		return nil, err
	}
	names := rootNames(tx)
	var out []MethodStats
	for _, v := range methodsIndex(t).All() {
		rec, err := tx.Deref(v)
		if err != nil {
			continue
		}
		o, _ := rec.Get("owner")
		ref, ok := o.(image.Ref)
		if !ok || (owner != 0 && store.OID(ref) != owner) {
			continue
		}
		sel, _ := rec.Get("selector")
		selector, _ := sel.(image.String)
		out = append(out, recordStats(tx, rec, store.OID(ref), string(selector), names)...)
	}
	slices.SortStableFunc(out, func(a, b MethodStats) int {
		if a.Current != b.Current {
			if a.Current {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(b.Calls, a.Calls), cmp.Compare(a.Label(), b.Label()))
	})
	return out, nil
}

func recordStats(tx *image.Tx, rec *image.Object, owner store.OID, selector string, names map[store.OID]string) []MethodStats {
	current, deprecated, missing := "", false, true
	name := names[owner]
	if o, err := tx.Object(owner); err == nil {
		if name == "" {
			if n, ok := o.Get("name"); ok {
				s, _ := n.(image.String)
				name = string(s)
			}
		}
		if v, ok := o.Get(selector); ok {
			if m, isMethod := v.(*image.Method); isMethod {
				current, missing = Version(m.Source), false
				deprecated = isDeprecated(m)
			}
		}
	}
	so, _ := samplesObject(tx, rec, false)
	samples := decodeSamples(so)
	failed := 0
	for _, s := range samples {
		if s.Error != "" || s.ErrorKind != "" {
			failed++
		}
	}
	var out []MethodStats
	for _, c := range decodeVersions(rec) {
		s := MethodStats{
			Owner: owner, OwnerName: name, Selector: selector, Version: c.Version,
			Current: c.Version == current, Missing: missing, Calls: c.Calls, Errors: c.Errors,
			ErrorKinds: c.ErrorKinds, LimitHits: c.LimitHits, P50: c.Latency.Quantile(0.5), P99: c.Latency.Quantile(0.99),
			MaxSteps: c.StepsMax, First: c.First, Last: c.Last, Samples: len(samples), FailedSamples: failed,
		}
		s.Deprecated = s.Current && deprecated
		if c.Calls > 0 {
			s.MeanSteps = float64(c.StepsTotal) / float64(c.Calls)
		}
		out = append(out, s)
	}
	return out
}

// rootNames maps the objects the root names to their names (the first
// in order, when one has several).
func rootNames(tx *image.Tx) map[store.OID]string {
	names := map[store.OID]string{}
	rn, err := tx.RootNames()
	if err != nil {
		return names
	}
	for n, oid := range rn {
		if prev, ok := names[oid]; !ok || n < prev {
			names[oid] = n
		}
	}
	return names
}

// isDeprecated reports whether a method is marked deprecated.
func isDeprecated(m *image.Method) bool {
	if m.Meta == nil {
		return false
	}
	v, ok := m.Meta.Get(image.String("deprecated"))
	return ok && v != image.None && !image.Equal(v, image.Bool(false))
}
