package heartbeat

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"batos/internal/catalog"
	"batos/internal/cycle"
	"batos/internal/image"
	"batos/internal/mind"
	"batos/internal/store"
	"batos/internal/vm"
)

// Facts are what an audit saw: gathered from the image alone, so that
// ALFRED judges evidence, not impressions.
type Facts struct {
	At time.Time `json:"at"`
	// Since is the previous audit's time, zero for the first.
	Since        time.Time     `json:"since"`
	FailedCycles []FailedCycle `json:"failed_cycles"`
	// Failing are methods with errors or limit hits, with failing
	// recorded calls as evidence.
	Failing    []MethodFact `json:"failing_methods"`
	Slowest    []MethodFact `json:"slowest_methods"`
	MostCalled []MethodFact `json:"most_called_methods"`
	// NeverCalled are methods cycles installed that nothing has called
	// since.
	NeverCalled []string      `json:"never_called_since_installed"`
	Personas    []PersonaFact `json:"personas"`
	Image       Growth        `json:"image"`
	Catalog     Growth        `json:"catalog"`
	// Unreadable says what the audit could not read (a persona or a
	// cycle edited from the REPL): the facts are what was left.
	Unreadable []string `json:"unreadable,omitempty"`
}

// FailedCycle is a cycle that failed, and why.
type FailedCycle struct {
	ID       int64  `json:"id"`
	Method   string `json:"method"`
	FailedIn string `json:"failed_in"`
	Reason   string `json:"reason"`
}

// MethodFact is a method as an audit reports it: the receiver and
// selector a proposal would name, and what it did.
type MethodFact struct {
	Receiver   string            `json:"receiver"`
	Selector   string            `json:"selector"`
	Calls      uint64            `json:"calls"`
	Errors     uint64            `json:"errors"`
	ErrorKinds map[string]uint64 `json:"error_kinds,omitempty"`
	LimitHits  uint64            `json:"limit_hits"`
	P50MS      float64           `json:"p50_ms"`
	P99MS      float64           `json:"p99_ms"`
	MeanSteps  float64           `json:"mean_steps"`
	Deprecated bool              `json:"deprecated,omitempty"`
	// Evidence are recorded calls: "average([]) failed (error):
	// floating-point division by zero".
	Evidence []string `json:"evidence,omitempty"`
}

// PersonaFact is what a persona's model calls cost.
type PersonaFact struct {
	Name             string  `json:"name"`
	Calls            int64   `json:"calls"`
	Failures         int64   `json:"failures"`
	PromptTokens     int64   `json:"prompt_tokens"`
	CompletionTokens int64   `json:"completion_tokens"`
	MeanLatencyMS    float64 `json:"mean_latency_ms"`
}

// Growth is a count now and its change since the previous audit.
type Growth struct {
	Objects      int   `json:"objects,omitempty"`
	Transactions int   `json:"transactions,omitempty"`
	FileBytes    int64 `json:"file_bytes,omitempty"`
	Documents    int   `json:"documents,omitempty"`
	Chunks       int   `json:"chunks,omitempty"`
	// Grown is the change of each count since the previous audit.
	Grown map[string]int64 `json:"grown,omitempty"`
}

// Bounds on the facts an audit puts to ALFRED: the prompt must stay a
// size a small model reads.
const (
	maxFactMethods  = 8
	maxFactCycles   = 8
	maxFactEvidence = 6
	maxNeverCalled  = 12
)

// gather collects the facts in one snapshot; prev is the previous
// audit's facts, for growth.
func gather(ctx context.Context, db *image.DB, now time.Time, prev *Facts) (*Facts, error) {
	f := &Facts{At: now.UTC()}
	if prev != nil {
		f.Since = prev.At
	}
	st, err := db.Store().Stats(ctx)
	if err != nil {
		return nil, err
	}
	f.Image = Growth{Objects: st.Objects, Transactions: st.Transactions, FileBytes: st.FileBytes}
	err = db.View(ctx, func(tx *image.Tx) error {
		stats, err := Stats(tx, 0)
		if err != nil {
			return err
		}
		if err := methodFacts(tx, f, stats); err != nil {
			return err
		}
		if err := cycleFacts(tx, f, stats); err != nil {
			return err
		}
		ps, err := mind.LoadPersonas(tx)
		if err != nil {
			f.Unreadable = append(f.Unreadable, "personas: "+clip(err.Error(), 300))
		}
		for _, p := range ps {
			f.Personas = append(f.Personas, PersonaFact{
				Name: p.Name, Calls: p.Usage.Calls, Failures: p.Usage.Failures, PromptTokens: p.Usage.PromptTokens,
				CompletionTokens: p.Usage.CompletionTokens, MeanLatencyMS: ms(p.Usage.MeanLatency()),
			})
		}
		if sum, err := catalog.Stats(tx); err == nil {
			f.Catalog = Growth{Documents: sum.Documents, Chunks: sum.Chunks}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if prev != nil {
		f.Image.Grown = map[string]int64{"objects": int64(f.Image.Objects - prev.Image.Objects),
			"transactions": int64(f.Image.Transactions - prev.Image.Transactions), "file_bytes": f.Image.FileBytes - prev.Image.FileBytes}
		f.Catalog.Grown = map[string]int64{"documents": int64(f.Catalog.Documents - prev.Catalog.Documents), "chunks": int64(f.Catalog.Chunks - prev.Catalog.Chunks)}
	}
	return f, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// methodFacts fills the failing, slowest and most-called methods from the
// current versions' telemetry.
func methodFacts(tx *image.Tx, f *Facts, stats []MethodStats) error {
	var current []MethodStats
	for _, s := range stats {
		if s.Current && s.Calls > 0 {
			current = append(current, s)
		}
	}
	names := rootNames(tx)
	fact := func(s MethodStats, evidence bool) (MethodFact, error) {
		mf := MethodFact{Receiver: receiverName(s, names), Selector: s.Selector, Calls: s.Calls, Errors: s.Errors,
			ErrorKinds: s.ErrorKinds, LimitHits: s.LimitHits, P50MS: ms(s.P50), P99MS: ms(s.P99),
			MeanSteps: s.MeanSteps, Deprecated: s.Deprecated}
		if evidence {
			samples, err := Samples(tx, s.Owner, s.Selector)
			if err != nil {
				return mf, err
			}
			mf.Evidence = Evidence(s.Selector, samples, maxFactEvidence)
		}
		return mf, nil
	}
	failing := slices.Clone(current)
	failing = slices.DeleteFunc(failing, func(s MethodStats) bool { return s.Errors == 0 && s.LimitHits == 0 })
	slices.SortStableFunc(failing, func(a, b MethodStats) int { return cmp.Compare(b.ErrorRate(), a.ErrorRate()) })
	for _, s := range failing[:min(len(failing), maxFactMethods)] {
		mf, err := fact(s, true)
		if err != nil {
			return err
		}
		f.Failing = append(f.Failing, mf)
	}
	slowest := slices.Clone(current)
	slices.SortStableFunc(slowest, func(a, b MethodStats) int { return cmp.Compare(b.P99, a.P99) })
	for _, s := range slowest[:min(len(slowest), maxFactMethods/2)] {
		mf, _ := fact(s, false)
		f.Slowest = append(f.Slowest, mf)
	}
	// stats come most-called first.
	for _, s := range current[:min(len(current), maxFactMethods/2)] {
		mf, _ := fact(s, false)
		f.MostCalled = append(f.MostCalled, mf)
	}
	return nil
}

// receiverName is how facts and proposals name a method's owner: its
// root name, or its OID with the name its name slot gives ("oid:23
// (calc)"), which a proposal resolves by the OID. A name slot alone names
// nothing a proposal can resolve: a clone of calc is named calc too.
func receiverName(s MethodStats, rootNames map[store.OID]string) string {
	if n := rootNames[s.Owner]; n != "" && !strings.ContainsAny(n, " \t\n(") {
		return n
	}
	if s.OwnerName != "" {
		return fmt.Sprintf("%s (%s)", s.Owner, clip(strings.Join(strings.Fields(s.OwnerName), " "), 40))
	}
	return s.Owner.String()
}

// Evidence renders up to n recorded calls, failures first, as lines a
// persona reads.
func Evidence(selector string, samples []vm.Sample, n int) []string {
	ordered := slices.Clone(samples)
	slices.SortStableFunc(ordered, func(a, b vm.Sample) int {
		return cmp.Compare(boolRank(a.Error == "" && a.ErrorKind == ""), boolRank(b.Error == "" && b.ErrorKind == ""))
	})
	var out []string
	for _, s := range ordered[:min(len(ordered), n)] {
		call := clip(callText(selector, s), 300)
		if s.Error != "" || s.ErrorKind != "" {
			out = append(out, fmt.Sprintf("%s failed (%s): %s", call, s.ErrorKind, clip(firstLine(s.Error), 200)))
		} else {
			out = append(out, fmt.Sprintf("%s answered %s", call, clip(image.Repr(s.Result), 200)))
		}
	}
	return out
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// firstLine is a message without the backtrace that follows it: vm
// errors put the backtrace first, and the error itself last.
func firstLine(msg string) string {
	lines := strings.Split(strings.TrimSpace(msg), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// cycleFacts adds failed cycles since the previous audit and methods
// cycles installed that nothing has called.
func cycleFacts(tx *image.Tx, f *Facts, stats []MethodStats) error {
	cs, err := cycle.List(tx)
	if err != nil {
		// What cannot be read is named, and the rest reported.
		f.Unreadable = append(f.Unreadable, "cycles: "+clip(err.Error(), 300))
	}
	called := map[string]bool{}
	for _, s := range stats {
		if s.Current && s.Calls > 0 {
			called[methodKey(s.Owner, s.Selector)] = true
		}
	}
	names := rootNames(tx)
	seen := map[string]bool{}
	for i := len(cs) - 1; i >= 0; i-- {
		c := cs[i]
		label := cmp.Or(names[c.Mission.Receiver], c.Mission.Receiver.String()) + "." + c.Mission.Selector
		switch c.State {
		case cycle.Failed:
			if len(f.FailedCycles) < maxFactCycles && c.Updated.After(f.Since) {
				f.FailedCycles = append(f.FailedCycles, FailedCycle{ID: c.ID, Method: label, FailedIn: c.FailedIn.String(), Reason: clip(c.Reason, 400)})
			}
		case cycle.Complete:
			key := methodKey(c.Mission.Receiver, c.Mission.Selector)
			if c.Mission.Selector == "" || seen[key] || called[key] || len(f.NeverCalled) >= maxNeverCalled {
				continue
			}
			seen[key] = true
			o, err := tx.Object(c.Mission.Receiver)
			if err != nil || cycle.CurrentSource(o, c.Mission.Selector) == "" {
				continue
			}
			f.NeverCalled = append(f.NeverCalled, label)
		}
	}
	return nil
}

// ownerOf finds the object whose own slot holds the method selector that
// receiver understands: the receiver itself or an ancestor.
func ownerOf(tx *image.Tx, receiver store.OID, selector string) (*image.Object, error) {
	o, err := tx.Object(receiver)
	if err != nil {
		return nil, err
	}
	for x, err := range tx.Lineage(o) {
		if err != nil {
			return nil, err
		}
		if v, ok := x.Get(selector); ok {
			switch v.(type) {
			case *image.Method:
				return x, nil
			case image.Primitive:
				return nil, fmt.Errorf("%s.%s is a primitive built into batos (%s), not a method", x.OID(), selector, clip(image.Repr(v), 80))
			}
			return nil, fmt.Errorf("%s.%s is data (%s), not a method", x.OID(), selector, clip(image.Repr(v), 80))
		}
	}
	return nil, fmt.Errorf("%s has no method %s", receiver, selector)
}
