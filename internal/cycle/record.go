package cycle

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"batos/internal/image"
	"batos/internal/llm"
	"batos/internal/store"
	"batos/internal/vm"
)

// Mission is what a cycle is for: a message nothing understood, or a
// brief (the seed's initiate_cognitive_cycle) for an object.
//
// Its message is the send that found no method; Selector is the missing
// method's name, empty for a brief until the plan names one.
type Mission struct {
	vm.Message
	Brief string
	// Improve, when set, makes the cycle an improvement of the existing
	// method Selector of Receiver (improve.go); Brief is then its goal.
	Improve *Improvement
}

// Key identifies the open cycle a message joins.
func (m Mission) Key() string {
	if m.Selector == "" {
		return ""
	}
	return m.Receiver.String() + " " + m.Selector
}

// StepKind says which stage of the cycle a step answers.
type StepKind string

// Step kinds; the strings are the recorded form.
const (
	StepPlan       StepKind = "plan"       // BRICK's plan (DECOMPOSING)
	StepDelegate   StepKind = "delegate"   // a persona's answer to a sub-question (DELEGATING)
	StepSynthesize StepKind = "synthesize" // ROBIN's method and tests (SYNTHESIZING)
)

// Step is one recorded model answer.
type Step struct {
	Kind    StepKind `json:"kind"`
	Attempt int      `json:"attempt,omitempty"`
	Index   int      `json:"index,omitempty"` // the sub-question, for StepDelegate
	Persona string   `json:"persona"`
	Model   string   `json:"model"`
	Adapter string   `json:"adapter,omitempty"`
	// Prompt is kept in an object of its own (PromptRef), written once:
	// prompts are the bulk of a cycle, and the cycle object is rewritten
	// at every transition. LoadPrompts fills Prompt in.
	Prompt           []llm.Message `json:"-"`
	PromptRef        ref           `json:"prompt,omitempty"`
	Answer           string        `json:"answer"`
	PromptTokens     int           `json:"prompt_tokens"`
	CompletionTokens int           `json:"completion_tokens"`
	LatencyMS        float64       `json:"latency_ms"`
	At               time.Time     `json:"at"`
	// Rejected says why the answer could not be used (unparsable), if so.
	Rejected string `json:"rejected,omitempty"`
	// Repaired says what was repaired in the answer's JSON to read it.
	Repaired string `json:"repaired,omitempty"`
	// Sources are the catalog passages the prompt quoted, numbered from
	// 1 in this order, for the answer to cite.
	Sources []Source `json:"sources,omitempty"`
}

// SubQuestion is a question of the plan, for one persona.
type SubQuestion struct {
	Persona  string `json:"persona"`
	Question string `json:"question"`
}

// Test is a test case: a Starlark expression that must be True, with
// self bound to the receiver and the new method installed.
type Test struct {
	Name string `json:"name"`
	Expr string `json:"expr"`
	// Fails, when set, says the expression must fail, with an error
	// whose message contains it (case aside): a test of a refusal.
	Fails string `json:"fails,omitempty"`
}

// Plan is BRICK's plan.
type Plan struct {
	Intent       string        `json:"intent"`
	Selector     string        `json:"selector"`
	Signature    string        `json:"signature"`
	SubQuestions []SubQuestion `json:"sub_questions"`
	Tests        []Test        `json:"tests"`
	// Refuses, when set, says the message's right answer is a refusal:
	// the original call must fail with an error whose message contains
	// it, and its sender is answered with that error.
	Refuses string `json:"refuses,omitempty"`
}

// FailureKind says which check refused a synthesis attempt.
type FailureKind string

// Failure kinds; the strings are the recorded form.
const (
	FailureParse FailureKind = "parse" // the answer was not a usable method
	FailureAudit FailureKind = "audit" // the guardian rejected the source
	FailureTest  FailureKind = "test"  // a test failed, or there were none
	FailureCall  FailureKind = "call"  // the original call failed; validation now reports it as FailureTest
)

// Failure is why a synthesis attempt was refused, fed back verbatim.
type Failure struct {
	Attempt int         `json:"attempt"`
	Kind    FailureKind `json:"kind"`
	Message string      `json:"message"`
	// Replay is the regression replay that refused the attempt, with
	// its diffs and step counts (FailureReplay).
	Replay *ReplayReport `json:"replay,omitempty"`
}

// Cycle is a cycle as recorded in the image.
type Cycle struct {
	ID          int64
	OID         store.OID
	State       State
	Mission     Mission
	Attempt     int
	MaxAttempts int
	PlanTries   int
	Plan        *Plan
	Steps       []Step
	Code        string
	Tests       []Test
	Failures    []Failure
	// FailedIn is the state a failed cycle stopped in (retry resumes there).
	FailedIn State
	Reason   string
	// Deliveries are the messages the cycle answers itself once the
	// method is installed (their senders took the handle).
	Deliveries []Delivery
	Created    time.Time
	Updated    time.Time
	// Runner names the node that holds the cycle's lease and the lease's
	// generation ("db1:4121/9f3a01c2 #3"), on images several nodes share;
	// only it may record the cycle's steps. Empty on an image file.
	Runner string
}

// Personas lists the personas that answered in the cycle, in order of
// first answer.
func (c *Cycle) Personas() []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range c.Steps {
		if !seen[s.Persona] {
			seen[s.Persona] = true
			out = append(out, s.Persona)
		}
	}
	return out
}

func (c *Cycle) models() []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range c.Steps {
		if s.Model != "" && !seen[s.Model] {
			seen[s.Model] = true
			out = append(out, s.Model)
		}
	}
	return out
}

// step finds the recorded answer of a kind, attempt and index: the last
// one, which is the one that counts.
func (c *Cycle) step(kind StepKind, attempt, index int) (Step, bool) {
	for i := len(c.Steps) - 1; i >= 0; i-- {
		s := c.Steps[i]
		if s.Kind == kind && s.Attempt == attempt && s.Index == index {
			return s, true
		}
	}
	return Step{}, false
}

// ref is an object reference inside plain (JSON-shaped) data: it
// travels as {"$ref": "oid:N"} and is kept in the image as a reference,
// so pack sees what it points to.
type ref store.OID

func (r ref) MarshalJSON() ([]byte, error) {
	if r == 0 {
		return []byte("null"), nil
	}
	return json.Marshal(map[string]string{image.RefTag: store.OID(r).String()})
}

func (r *ref) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*r = 0
		return nil
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	oid, err := image.ParseRefTag(m[image.RefTag])
	if err != nil {
		return err
	}
	*r = ref(oid)
	return nil
}

func (r ref) IsZero() bool { return r == 0 }

// ErrNoCycle is returned for a cycle ID the image does not have.
var ErrNoCycle = errors.New("cycle: no such cycle")

// slot names of a cycle object
const (
	slotID, slotState, slotReceiver, slotSelector, slotBrief = "id", "state", "receiver", "selector", "brief"
	slotArgs, slotKwargs, slotAttempt                        = "args", "kwargs", "attempt"
	slotMaxAttempts, slotPlanTries, slotPlan, slotSteps      = "max_attempts", "plan_tries", "plan", "steps"
	slotCode, slotTests, slotFailures, slotFailedIn          = "code", "tests", "failures", "failed_in"
	slotReason, slotCreated, slotUpdated                     = "reason", "created", "updated"
	slotImprove                                              = "improve"
	slotRunner                                               = "runner"
)

// encode writes c into o's slots.
func encode(o *image.Object, c *Cycle) error {
	kwargs := &image.Dict{}
	for _, kw := range c.Mission.Kwargs {
		if err := kwargs.Set(image.String(kw.Name), kw.Value); err != nil {
			return err
		}
	}
	var plan image.Value = image.None
	if c.Plan != nil {
		v, err := plainValue(c.Plan)
		if err != nil {
			return err
		}
		plan = v
	}
	steps, err := plainValue(c.Steps)
	if err != nil {
		return err
	}
	tests, err := plainValue(c.Tests)
	if err != nil {
		return err
	}
	failures, err := plainValue(c.Failures)
	if err != nil {
		return err
	}
	deliveries, err := encodeDeliveries(c.Deliveries)
	if err != nil {
		return err
	}
	var improve image.Value = image.None
	if c.Mission.Improve != nil {
		if improve, err = plainValue(c.Mission.Improve); err != nil {
			return err
		}
	}
	slots := []image.Slot{
		{Name: "name", Value: image.String(fmt.Sprintf("cycle %d", c.ID))},
		{Name: slotID, Value: image.Int(c.ID)},
		{Name: slotState, Value: image.String(c.State.String())},
		{Name: slotReceiver, Value: image.Ref(c.Mission.Receiver)},
		{Name: slotSelector, Value: image.String(c.Mission.Selector)},
		{Name: slotBrief, Value: image.String(c.Mission.Brief)},
		{Name: slotArgs, Value: image.NewList(c.Mission.Args...)},
		{Name: slotKwargs, Value: kwargs},
		{Name: slotDeliveries, Value: deliveries},
		{Name: slotAttempt, Value: image.Int(c.Attempt)},
		{Name: slotMaxAttempts, Value: image.Int(c.MaxAttempts)},
		{Name: slotPlanTries, Value: image.Int(c.PlanTries)},
		{Name: slotPlan, Value: plan},
		{Name: slotSteps, Value: steps},
		{Name: slotCode, Value: image.String(c.Code)},
		{Name: slotTests, Value: tests},
		{Name: slotFailures, Value: failures},
		{Name: slotFailedIn, Value: image.String(c.FailedIn.String())},
		{Name: slotReason, Value: image.String(c.Reason)},
		{Name: slotCreated, Value: image.String(c.Created.UTC().Format(time.RFC3339Nano))},
		{Name: slotUpdated, Value: image.String(c.Updated.UTC().Format(time.RFC3339Nano))},
		{Name: slotImprove, Value: improve},
	}
	if _, had := o.Peek(slotRunner); had || c.Runner != "" {
		// Only images several nodes share have runners: an image file's
		// cycles keep the slots they always had.
		slots = append(slots, image.Slot{Name: slotRunner, Value: image.String(c.Runner)})
	}
	for _, s := range slots {
		if err := o.Set(s.Name, s.Value); err != nil {
			return fmt.Errorf("cycle %d: slot %s: %w", c.ID, s.Name, err)
		}
	}
	return nil
}

// decode reads a cycle object. Cycles are image objects a user can
// touch from the REPL; a slot of the wrong kind is reported by name.
func decode(o *image.Object) (*Cycle, error) {
	c := &Cycle{OID: o.OID()}
	var errs []error
	// what names a slot's value in an error: clipped, or "missing".
	what := func(v image.Value, present bool) string {
		if !present {
			return "missing"
		}
		return clip(image.Repr(v), 100)
	}
	str := func(slot string) string {
		v, present := o.Peek(slot)
		s, ok := v.(image.String)
		if !ok && present && v != image.None {
			errs = append(errs, fmt.Errorf("slot %s is %s, want a string", slot, what(v, present)))
		}
		return string(s)
	}
	num := func(slot string) int64 {
		v, present := o.Peek(slot)
		n, ok := v.(image.Int)
		if !ok {
			errs = append(errs, fmt.Errorf("slot %s is %s, want an int", slot, what(v, present)))
		}
		return int64(n)
	}
	plain := func(slot string, dst any) {
		v, ok := o.Peek(slot)
		if !ok || v == image.None {
			return
		}
		if err := fromPlain(v, dst); err != nil {
			errs = append(errs, fmt.Errorf("slot %s: %w", slot, err))
		}
	}
	c.ID = num(slotID)
	var err error
	if c.State, err = ParseState(str(slotState)); err != nil {
		errs = append(errs, err)
	}
	if v, present := o.Peek(slotReceiver); present {
		r, ok := v.(image.Ref)
		if !ok {
			errs = append(errs, fmt.Errorf("slot receiver is %s, want an object", what(v, present)))
		}
		c.Mission.Receiver = store.OID(r)
	}
	c.Mission.Selector, c.Mission.Brief = str(slotSelector), str(slotBrief)
	// The call is run again (validation, delivery): arguments that are
	// not what they were must be reported, not dropped.
	if v, ok := o.Peek(slotArgs); ok {
		if l, isList := v.(*image.List); isList {
			c.Mission.Args = append([]image.Value(nil), l.Elems...)
		} else {
			errs = append(errs, fmt.Errorf("slot args is %s, want a list", what(v, ok)))
		}
	}
	if v, ok := o.Peek(slotKwargs); ok {
		d, isDict := v.(*image.Dict)
		if !isDict {
			errs = append(errs, fmt.Errorf("slot kwargs is %s, want a dict", what(v, ok)))
		} else {
			for k, val := range d.All() {
				s, isString := k.(image.String)
				if !isString {
					errs = append(errs, fmt.Errorf("slot kwargs has the key %s, want a string", what(k, true)))
				}
				c.Mission.Kwargs = append(c.Mission.Kwargs, image.Slot{Name: string(s), Value: val})
			}
		}
	}
	if v, ok := o.Peek(slotDeliveries); ok {
		ds, err := decodeDeliveries(v)
		if err != nil {
			errs = append(errs, err)
		}
		c.Deliveries = ds
	}
	c.Attempt, c.MaxAttempts, c.PlanTries = int(num(slotAttempt)), int(num(slotMaxAttempts)), int(num(slotPlanTries))
	if v, ok := o.Peek(slotPlan); ok && v != image.None {
		c.Plan = &Plan{}
		plain(slotPlan, c.Plan)
	}
	if v, ok := o.Peek(slotImprove); ok && v != image.None {
		c.Mission.Improve = &Improvement{}
		plain(slotImprove, c.Mission.Improve)
	}
	plain(slotSteps, &c.Steps)
	plain(slotTests, &c.Tests)
	plain(slotFailures, &c.Failures)
	c.Code, c.Reason, c.Runner = str(slotCode), str(slotReason), str(slotRunner)
	if s := str(slotFailedIn); s != "" {
		if c.FailedIn, err = ParseState(s); err != nil {
			errs = append(errs, fmt.Errorf("slot failed_in: %w", err))
		}
	}
	c.Created, _ = time.Parse(time.RFC3339Nano, str(slotCreated))
	c.Updated, _ = time.Parse(time.RFC3339Nano, str(slotUpdated))
	if len(errs) > 0 {
		return nil, fmt.Errorf("cycle object %s: %w", o.OID(), errors.Join(errs...))
	}
	return c, nil
}

// plainValue and fromPlain keep cycles' records as plain image values.
func plainValue(v any) (image.Value, error) { return image.PlainValue(v) }

func fromPlain(v image.Value, dst any) error { return image.FromPlain(v, dst) }

// newPrompt keeps a step's prompt in an object of its own.
func newPrompt(tx *image.Tx, prompt []llm.Message) (ref, error) {
	v, err := promptValue(prompt)
	if err != nil {
		return 0, err
	}
	o, err := tx.New(image.Slot{Name: "messages", Value: v})
	if err != nil {
		return 0, err
	}
	return ref(o.OID()), nil
}

// promptValue is plainValue(prompt) made directly, without the trip
// through JSON: a list of {"content", "role"} dicts (PlainValue sorts
// keys). Prompts are the bulk of what a cycle records. Text that is not
// valid UTF-8 takes the trip, whose encoder replaces the bad bytes.
func promptValue(prompt []llm.Message) (image.Value, error) {
	if prompt == nil {
		return image.None, nil
	}
	elems := make([]image.Value, len(prompt))
	for i, m := range prompt {
		if !utf8.ValidString(m.Role) || !utf8.ValidString(m.Content) {
			return plainValue(prompt)
		}
		d := &image.Dict{}
		if err := d.Set(image.String("content"), image.String(m.Content)); err != nil {
			return nil, err
		}
		if err := d.Set(image.String("role"), image.String(m.Role)); err != nil {
			return nil, err
		}
		elems[i] = d
	}
	return image.NewList(elems...), nil
}

// LoadPrompts reads every step's prompt into Step.Prompt.
func LoadPrompts(tx *image.Tx, c *Cycle) error {
	for i := range c.Steps {
		s := &c.Steps[i]
		if s.PromptRef == 0 {
			continue
		}
		o, err := tx.Object(store.OID(s.PromptRef))
		if err != nil {
			return fmt.Errorf("cycle %d step %d prompt: %w", c.ID, i+1, err)
		}
		v, _ := o.Get("messages")
		if err := fromPlain(v, &s.Prompt); err != nil {
			return fmt.Errorf("cycle %d step %d prompt: %w", c.ID, i+1, err)
		}
	}
	return nil
}

// Delivers reports whether the cycle has messages to answer itself.
func (c *Cycle) Delivers() bool { return len(c.Deliveries) > 0 }

// Answer is the first delivery's answer (its repr), once it is not
// pending.
func (c *Cycle) Answer() string {
	if len(c.Deliveries) == 0 || c.Deliveries[0].State == DeliveryPending {
		return ""
	}
	return c.Deliveries[0].Answer
}
