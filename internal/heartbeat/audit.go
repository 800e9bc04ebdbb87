package heartbeat

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"batos/internal/cycle"
	"batos/internal/image"
	"batos/internal/llm"
	"batos/internal/store"
	"batos/internal/vm"
)

// Audit states; the strings are the recorded form.
const (
	AuditAsking   = "asking"   // the facts are kept, ALFRED is being asked
	AuditAnswered = "answered" // the answer is kept; proposals are acted on
	AuditFailed   = "failed"   // no usable answer (Error says why)
)

// Proposal states; the strings are the recorded form.
const (
	ProposalPending  = "pending"           // not acted on yet
	ProposalInCycle  = "in cycle"          // an improvement cycle works on it
	ProposalWaiting  = "awaiting approval" // passed every gate; a person decides
	ProposalAccepted = "accepted"          // a person accepted it: installed
	ProposalApplied  = "applied"           // installed (or marked) by the auto policy
	ProposalRejected = "rejected"          // a person, or a gate, refused it
	ProposalDropped  = "dropped"           // it no longer applies (the method changed)
	ProposalDeferred = "deferred"          // over budget; a later audit may propose it again
	ProposalRefused  = "refused"           // not acted on: cooling down, in flight, or naming no method
)

// Finding is one thing ALFRED found, with the facts that show it.
type Finding struct {
	Title    string   `json:"title"`
	Severity string   `json:"severity"`
	Evidence []string `json:"evidence"`
}

// Proposal is a change ALFRED proposed, and what became of it.
type Proposal struct {
	N int `json:"n"`
	// Receiver and Selector are as ALFRED named them; Owner is the
	// object whose slot holds the method, once resolved.
	Receiver string    `json:"receiver"`
	Selector string    `json:"selector"`
	Kind     string    `json:"kind"`
	Goal     string    `json:"goal"`
	Owner    store.OID `json:"owner,omitempty"`
	// Base is the method's version (Version) when the audit was
	// answered: a proposal is never applied to another.
	Base   string `json:"base,omitempty"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	Cycle  int64  `json:"cycle,omitempty"`
	// Tokens are what its improvement cycle spent.
	Tokens    int64     `json:"tokens,omitempty"`
	DecidedBy string    `json:"decided_by,omitempty"`
	Decided   time.Time `json:"decided,omitzero"`
}

// ID names a proposal across audits: "3.2" is audit 3's second.
func ID(audit int64, n int) string { return fmt.Sprintf("%d.%d", audit, n) }

// ParseID reads a proposal ID ("3.2").
func ParseID(s string) (audit int64, n int, err error) {
	a, p, ok := strings.Cut(strings.TrimSpace(s), ".")
	audit, aerr := strconv.ParseInt(a, 10, 64)
	n64, perr := strconv.ParseInt(p, 10, 32)
	if !ok || aerr != nil || perr != nil || audit <= 0 || n64 <= 0 {
		return 0, 0, fmt.Errorf("proposal ID %q: want AUDIT.N, like 3.2 (audit 3, its second proposal)", clip(s, 40))
	}
	return audit, int(n64), nil
}

// Audit is one self-audit as the image keeps it.
type Audit struct {
	ID       int64     `json:"id"`
	OID      store.OID `json:"-"`
	State    string    `json:"state"`
	By       string    `json:"by"`
	Policy   string    `json:"policy"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	Facts    *Facts    `json:"facts,omitempty"`
	// The answer, verbatim, and what the call cost.
	Answer           string     `json:"answer,omitempty"`
	Model            string     `json:"model,omitempty"`
	PromptTokens     int64      `json:"prompt_tokens"`
	CompletionTokens int64      `json:"completion_tokens"`
	LatencyMS        float64    `json:"latency_ms"`
	Summary          string     `json:"summary,omitempty"`
	Findings         []Finding  `json:"findings,omitempty"`
	Proposals        []Proposal `json:"proposals,omitempty"`
	Error            string     `json:"error,omitempty"`
	// Notes say what the audit could not act on as asked (a policy it
	// could not read, a budget spent).
	Notes []string `json:"notes,omitempty"`
}

// Tokens are what the audit spent: ALFRED's answer and the improvement
// cycles of its proposals.
func (a *Audit) Tokens() int64 {
	n := a.PromptTokens + a.CompletionTokens
	for _, p := range a.Proposals {
		n += p.Tokens
	}
	return n
}

// ErrNoAudit and ErrNoProposal are returned for IDs the image does not
// have.
var (
	ErrNoAudit    = errors.New("heartbeat: no such audit")
	ErrNoProposal = errors.New("heartbeat: no such proposal")
)

func auditSlot(id int64) string { return "a" + strconv.FormatInt(id, 10) }

// auditsObject is the root's "audits" object: "a3" names audit 3,
// "next_id" counts them.
func auditsObject(tx *image.Tx) (*image.Object, error) { return rootObject(tx, "audits") }

func auditObject(tx *image.Tx, id int64) (*image.Object, error) {
	as, err := auditsObject(tx)
	if err != nil {
		return nil, err
	}
	v, ok := as.Get(auditSlot(id))
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrNoAudit, id)
	}
	return derefAudit(tx, id, v)
}

// derefAudit is the object an audits slot names, or why it names none.
func derefAudit(tx *image.Tx, id int64, v image.Value) (*image.Object, error) {
	o, err := tx.Deref(v)
	if errors.Is(err, image.ErrNotObject) {
		return nil, fmt.Errorf("audit %d cannot be read: audits.%s holds %s, not an audit object", id, auditSlot(id), clip(image.Repr(v), 60))
	}
	if err != nil {
		return nil, fmt.Errorf("audit %d: %w", id, err)
	}
	return o, nil
}

// LoadAudit reads audit id.
func LoadAudit(tx *image.Tx, id int64) (*Audit, error) {
	o, err := auditObject(tx, id)
	if err != nil {
		return nil, err
	}
	return decodeAudit(o, id)
}

// auditID is the audit a slot of the audits object names: "a3" is audit
// 3; any other name (next_id, "a03", "a0") names none.
func auditID(slot string) (int64, bool) {
	digits, ok := strings.CutPrefix(slot, "a")
	id, err := strconv.ParseInt(digits, 10, 64)
	return id, ok && err == nil && id > 0 && auditSlot(id) == slot
}

// ListAudits reads every audit, oldest first; one that cannot be read
// (edited from the REPL) is reported in the error, the rest listed.
func ListAudits(tx *image.Tx) ([]*Audit, error) {
	as, err := auditsObject(tx)
	if err != nil {
		return nil, err
	}
	var out []*Audit
	var errs []error
	for _, s := range as.Slots() {
		id, ok := auditID(s.Name)
		if !ok {
			continue
		}
		o, err := derefAudit(tx, id, s.Value)
		if err == nil {
			var a *Audit
			if a, err = decodeAudit(o, id); err == nil {
				out = append(out, a)
				continue
			}
		}
		errs = append(errs, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, errors.Join(errs...)
}

// createAudit makes audit a's object, assigning its ID.
func createAudit(tx *image.Tx, a *Audit) error {
	as, err := auditsObject(tx)
	if err != nil {
		return err
	}
	next := int64(1)
	if v, ok := as.Get("next_id"); ok {
		if n, isInt := v.(image.Int); isInt && n > 0 {
			next = int64(n)
		}
	}
	for _, taken := as.Get(auditSlot(next)); taken; _, taken = as.Get(auditSlot(next)) {
		next = nextID(next) // never overwrite an audit
	}
	a.ID = next
	o, err := tx.New()
	if err != nil {
		return err
	}
	a.OID = o.OID()
	if err := encodeAudit(o, a); err != nil {
		return err
	}
	if err := as.Set("next_id", image.Int(nextID(next))); err != nil {
		return err
	}
	return as.Set(auditSlot(a.ID), o.Ref())
}

// nextID is the ID after id; after the largest comes 1 again (a
// next_id edited that far), never a negative one no ID names.
func nextID(id int64) int64 {
	if id >= math.MaxInt64 {
		return 1
	}
	return id + 1
}

// encodeAudit writes a into o: a name and its fields as plain slots, so
// it reads naturally from the REPL (audits.a3.proposals).
func encodeAudit(o *image.Object, a *Audit) error {
	v, err := image.PlainValue(a)
	if err != nil {
		return err
	}
	d := v.(*image.Dict)
	if err := o.Set("name", image.String(fmt.Sprintf("audit %d", a.ID))); err != nil {
		return err
	}
	for k, val := range d.All() {
		if err := o.Set(string(k.(image.String)), val); err != nil {
			return err
		}
	}
	return nil
}

// decodeAudit reads audit id from its object. The ID is the one the
// audits object names it by, and a proposal's number its place in the
// list, whatever their slots were edited to: every later write goes
// back where it came from.
func decodeAudit(o *image.Object, id int64) (*Audit, error) {
	d := &image.Dict{}
	for _, s := range o.Slots() {
		if s.Name == "name" {
			continue
		}
		if err := d.Set(image.String(s.Name), s.Value); err != nil {
			return nil, err
		}
	}
	a := &Audit{}
	if err := image.FromPlain(d, a); err != nil {
		return nil, fmt.Errorf("audit %d (%s) cannot be read, was it edited? %s", id, o.OID(), plainError(err))
	}
	a.ID, a.OID = id, o.OID()
	for i := range a.Proposals {
		a.Proposals[i].N = i + 1
	}
	return a, nil
}

// plainError says what FromPlain could not read in the words of the
// image: which slot holds what, rather than Go's types.
func plainError(err error) string {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return err.Error()
	}
	want := "another kind of value"
	switch te.Type.Kind() {
	case reflect.String:
		want = "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		want = "an integer"
	case reflect.Float32, reflect.Float64:
		want = "a number"
	case reflect.Bool:
		want = "True or False"
	case reflect.Slice, reflect.Array:
		want = "a list"
	case reflect.Struct, reflect.Map:
		want = "a dict"
	}
	return fmt.Sprintf("its %s holds a %s where %s belongs", te.Field, te.Value, want)
}

// updateAudit applies fn to audit id in tx.
func updateAudit(tx *image.Tx, id int64, fn func(a *Audit) error) (*Audit, error) {
	o, err := auditObject(tx, id)
	if err != nil {
		return nil, err
	}
	a, err := decodeAudit(o, id)
	if err != nil {
		return nil, err
	}
	if err := fn(a); err != nil {
		return nil, err
	}
	return a, encodeAudit(o, a)
}

// auditSchema is the JSON schema of ALFRED's audit: strict servers'
// form (every property required, optional ones nullable).
var auditSchema = json.RawMessage(`{
  "type": "object",
  "properties": {
    "summary": {"type": "string"},
    "findings": {"type": "array", "items": {"type": "object",
      "properties": {"title": {"type": "string"}, "severity": {"type": "string", "enum": ["low", "medium", "high"]},
        "evidence": {"type": "array", "items": {"type": "string"}}},
      "required": ["title", "severity", "evidence"], "additionalProperties": false}},
    "proposals": {"type": "array", "items": {"type": "object",
      "properties": {"receiver": {"type": "string"}, "selector": {"type": "string"},
        "kind": {"type": "string", "enum": ["fix", "optimize", "simplify", "document", "retire"]},
        "goal": {"type": "string"}},
      "required": ["receiver", "selector", "kind", "goal"], "additionalProperties": false}}
  },
  "required": ["summary", "findings", "proposals"],
  "additionalProperties": false
}`)

// answer is ALFRED's audit as the schema has it.
type answer struct {
	Summary   string    `json:"summary"`
	Findings  []Finding `json:"findings"`
	Proposals []struct {
		Receiver string `json:"receiver"`
		Selector string `json:"selector"`
		Kind     string `json:"kind"`
		Goal     string `json:"goal"`
	} `json:"proposals"`
}

// Bounds on an answer: what the audit keeps of it (the answer itself is
// kept too, clipped to 64 KiB).
const (
	maxFindings  = 12
	maxProposals = 6
	// maxSummary bounds the summary, maxTitle a finding's title,
	// maxEvidence and maxEvidenceText its evidence.
	maxSummary      = 8 << 10
	maxTitle        = 300
	maxEvidence     = 12
	maxEvidenceText = 500
	// maxName bounds a proposal's receiver and selector: longer ones
	// name nothing (clipped, they resolve to nothing, and say so).
	maxName = 200
)

// auditPrompt is ALFRED's task: the facts, and the answer's shape.
func auditPrompt(f *Facts) ([]llm.Message, error) {
	facts, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString(`Audit this living image from the facts below, gathered from its own telemetry, cycles and accounts.
Name what deserves attention, each finding with the facts that show it (quote them), and propose changes
to methods where the evidence calls for one:
- "fix": a method that fails on some calls (its failing calls are in the evidence);
- "optimize": a slow or step-hungry method (the same results in fewer steps);
- "simplify" or "document": a method that works but is hard to read;
- "retire": a method nothing calls.
Name each method as the facts do: "receiver" and "selector". Propose only for methods the facts name,
at most ` + strconv.Itoa(maxProposals) + `, and none when nothing needs changing. Each proposal becomes a mission: its goal
says in one sentence what the change must achieve.

Facts:
`)
	b.Write(facts)
	b.WriteString(`

Answer only with JSON: {"summary": a short paragraph, "findings": [{"title": ..., "severity": "low" |
"medium" | "high", "evidence": [...]}], "proposals": [{"receiver": ..., "selector": ..., "kind": "fix" |
"optimize" | "simplify" | "document" | "retire", "goal": ...}]}.`)
	return []llm.Message{{Role: llm.RoleUser, Content: b.String()}}, nil
}

// parseAnswer reads ALFRED's audit, refusing what the schema forbids.
func parseAnswer(text string) (*answer, error) {
	a, _, err := cycle.DecodeAnswer[answer](text)
	if err != nil {
		return nil, fmt.Errorf("the audit is not the JSON the schema asks for: %w", err)
	}
	a.Summary = clip(a.Summary, maxSummary)
	if len(a.Findings) > maxFindings {
		a.Findings = a.Findings[:maxFindings]
	}
	for i := range a.Findings {
		f := &a.Findings[i]
		switch f.Severity = strings.ToLower(strings.TrimSpace(f.Severity)); f.Severity {
		case "low", "medium", "high":
		default:
			return nil, fmt.Errorf("finding %d: severity %q is not low, medium or high", i+1, clip(f.Severity, 40))
		}
		f.Title = clip(f.Title, maxTitle)
		f.Evidence = f.Evidence[:min(len(f.Evidence), maxEvidence)]
		for j := range f.Evidence {
			f.Evidence[j] = clip(f.Evidence[j], maxEvidenceText)
		}
	}
	if len(a.Proposals) > maxProposals {
		return nil, fmt.Errorf("the audit makes %d proposals (at most %d)", len(a.Proposals), maxProposals)
	}
	for i := range a.Proposals {
		p := &a.Proposals[i]
		p.Receiver, p.Selector = clip(p.Receiver, maxName), clip(p.Selector, maxName)
		switch {
		case strings.TrimSpace(p.Receiver) == "" || strings.TrimSpace(p.Selector) == "":
			return nil, fmt.Errorf("proposal %d names no receiver or no selector", i+1)
		case p.Kind != "retire" && !cycle.IsImproveKind(p.Kind):
			return nil, fmt.Errorf("proposal %d: kind %q is not fix, optimize, simplify, document or retire", i+1, clip(p.Kind, 40))
		case strings.TrimSpace(p.Goal) == "":
			return nil, fmt.Errorf("proposal %d has no goal", i+1)
		}
	}
	return a, nil
}

// resolveProposal finds the method a proposal names: the receiver as the
// facts name it (a root name, "oid:12", or "oid:12 (name)"), then the
// object in its lineage whose slot holds the method. It fills Owner and
// Base, or says why the proposal names no method.
func resolveProposal(tx *image.Tx, p *Proposal) string {
	target := strings.TrimSpace(p.Receiver)
	if i := strings.IndexAny(target, " ("); i > 0 && strings.HasPrefix(target, "oid:") {
		target = target[:i]
	}
	oid, err := tx.Resolve(target)
	if err != nil {
		return fmt.Sprintf("the receiver %q is no object of the image: %v", clip(p.Receiver, 80), err)
	}
	if !vm.IsSelector(p.Selector) {
		return fmt.Sprintf("%q is not a method name", clip(p.Selector, 80))
	}
	owner, err := ownerOf(tx, oid, p.Selector)
	if err != nil {
		return err.Error()
	}
	p.Owner = owner.OID()
	p.Base = Version(cycle.CurrentSource(owner, p.Selector))
	return ""
}
