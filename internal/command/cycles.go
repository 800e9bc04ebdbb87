package command

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"batos/internal/cycle"
	"batos/internal/image"
	"batos/internal/llm"
	"batos/internal/store"
)

// CycleView is a cognitive cycle as the CLI and the bridge show it. A
// summary (a list's entry) leaves out the plan, steps, code, tests,
// failures and provenance.
type CycleView struct {
	ID    int64  `json:"id"`
	State string `json:"state"`
	// Receiver is the receiver's OID; ReceiverName its root name, if any.
	Receiver     string `json:"receiver"`
	ReceiverName string `json:"receiver_name,omitempty"`
	// Selector is the method learned (for a brief, once the plan names it).
	Selector string `json:"selector,omitempty"`
	Brief    string `json:"brief,omitempty"`
	// Call is the message that started the cycle, as Starlark.
	Call             string   `json:"call,omitempty"`
	Deliver          bool     `json:"deliver"`
	Attempt          int      `json:"attempt"`
	MaxAttempts      int      `json:"max_attempts"`
	Personas         []string `json:"personas"`
	StepCount        int      `json:"step_count"`
	PromptTokens     int      `json:"prompt_tokens"`
	CompletionTokens int      `json:"completion_tokens"`
	ModelMS          float64  `json:"model_ms"` // the time spent in the model, over every step
	FailedIn         string   `json:"failed_in,omitempty"`
	Reason           string   `json:"reason,omitempty"`
	Answer           string   `json:"answer,omitempty"`
	// Deliveries are the messages the cycle answers itself (their senders
	// took the handle); Pending counts those not answered yet.
	Deliveries []DeliveryView `json:"deliveries,omitempty"`
	Pending    int            `json:"pending"`
	// Runner is the node that runs (or ran) the cycle on a database
	// several nodes share, with its lease's generation.
	Runner  string    `json:"runner,omitempty"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`

	Plan       *cycle.Plan     `json:"plan,omitempty"`
	Steps      []StepView      `json:"steps,omitempty"`
	Code       string          `json:"code,omitempty"`
	Tests      []cycle.Test    `json:"tests,omitempty"`
	Failures   []cycle.Failure `json:"failures,omitempty"`
	Provenance *Provenance     `json:"provenance,omitempty"`
}

// DeliveryView is a message the cycle answers itself.
type DeliveryView struct {
	Call   string `json:"call"`
	State  string `json:"state"` // pending, answered, failed, forwarded, abandoned
	Answer string `json:"answer,omitempty"`
}

// StepView is one recorded model answer, with its full prompt (which
// the cycle keeps in an object of its own).
type StepView struct {
	cycle.Step
	Prompt []llm.Message `json:"prompt"`
}

// Provenance is what an installed method records of the cycle that
// wrote it.
type Provenance struct {
	// Slot is where the method was installed, like genesis.display_yourself.
	Slot string `json:"slot"`
	// Current says whether the slot still holds this cycle's method.
	Current     bool     `json:"current"`
	Personas    []string `json:"personas,omitempty"`
	Models      []string `json:"models,omitempty"`
	Attempts    int      `json:"attempts,omitempty"`
	Tests       []string `json:"tests,omitempty"`
	InstalledAt string   `json:"installed_at,omitempty"`
	// Previous is what batos method revert restores: "nothing" (it
	// removes the slot), "a method" or "a value".
	Previous string `json:"previous,omitempty"`
	// Sources cite the knowledge catalog's passages the researcher was
	// shown, as "title#position (document ID)".
	Sources []string `json:"sources,omitempty"`
}

// viewCycle builds c's view; full adds what a summary leaves out.
func viewCycle(tx *image.Tx, names map[store.OID]string, c *cycle.Cycle, full bool) CycleView {
	v := CycleView{
		ID: c.ID, State: c.State.String(), Receiver: c.Mission.Receiver.String(), ReceiverName: names[c.Mission.Receiver],
		Selector: c.Mission.Selector, Brief: c.Mission.Brief, Deliver: c.Delivers(), Attempt: c.Attempt, MaxAttempts: c.MaxAttempts,
		Personas: c.Personas(), StepCount: len(c.Steps), Reason: c.Reason, Answer: c.Answer(), Created: c.Created, Updated: c.Updated,
		Runner: c.Runner,
	}
	if v.Selector == "" && c.Plan != nil {
		v.Selector = c.Plan.Selector
	}
	for _, d := range c.Deliveries {
		receiver := names[d.Message.Receiver]
		if receiver == "" {
			receiver = d.Message.Receiver.String()
		}
		v.Deliveries = append(v.Deliveries, DeliveryView{Call: callText(receiver, d.Message), State: string(d.State), Answer: d.Answer})
		if d.State == cycle.DeliveryPending {
			v.Pending++
		}
	}
	if c.Mission.Selector != "" {
		v.Call = callText(v.receiverText(), c.Mission)
	}
	if c.State == cycle.Failed {
		v.FailedIn = c.FailedIn.String()
	}
	for _, s := range c.Steps {
		v.PromptTokens += s.PromptTokens
		v.CompletionTokens += s.CompletionTokens
		v.ModelMS += s.LatencyMS
	}
	if v.Personas == nil {
		v.Personas = []string{}
	}
	if !full {
		return v
	}
	v.Plan, v.Code, v.Tests, v.Failures = c.Plan, c.Code, c.Tests, c.Failures
	for _, s := range c.Steps {
		// The prompt is the view's own; where the cycle keeps it is not.
		prompt := s.Prompt
		s.Prompt, s.PromptRef = nil, 0
		v.Steps = append(v.Steps, StepView{Step: s, Prompt: prompt})
	}
	if c.State == cycle.Complete && v.Selector != "" {
		v.Provenance = provenance(tx, v, c)
	}
	return v
}

// receiverText names the receiver as a user would write it.
func (v CycleView) receiverText() string {
	if v.ReceiverName != "" {
		return v.ReceiverName
	}
	return v.Receiver
}

// Label is the cycle's message or brief, in a few words.
func (v CycleView) Label() string {
	if v.Call != "" {
		return v.Call
	}
	brief := v.Brief
	if len(brief) > 50 {
		brief = brief[:50] + "…"
	}
	if v.Selector != "" {
		return fmt.Sprintf("%s.%s: %q", v.receiverText(), v.Selector, brief)
	}
	return fmt.Sprintf("%s: %q", v.receiverText(), brief)
}

func callText(receiver string, m cycle.Mission) string {
	var parts []string
	for _, a := range m.Args {
		parts = append(parts, image.Repr(a))
	}
	for _, kw := range m.Kwargs {
		parts = append(parts, kw.Name+"="+image.Repr(kw.Value))
	}
	return fmt.Sprintf("%s.%s(%s)", receiver, m.Selector, strings.Join(parts, ", "))
}

// provenance reads what the receiver's method records of cycle c.
func provenance(tx *image.Tx, v CycleView, c *cycle.Cycle) *Provenance {
	p := &Provenance{Slot: v.receiverText() + "." + v.Selector}
	o, err := tx.Object(c.Mission.Receiver)
	if err != nil {
		return p
	}
	val, _ := o.Get(v.Selector)
	m, ok := val.(*image.Method)
	if !ok || m.Meta == nil {
		return p
	}
	get := func(k string) image.Value {
		x, _ := m.Meta.Get(image.String(k))
		return x
	}
	if n, ok := get("cycle").(image.Int); !ok || int64(n) != c.ID {
		return p // replaced or reverted since
	}
	p.Current = true
	p.Personas, p.Models, p.Tests = strs(get("personas")), strs(get("models")), strs(get("tests"))
	if n, ok := get("attempts").(image.Int); ok {
		p.Attempts = int(n)
	}
	if s, ok := get("installed_at").(image.String); ok {
		p.InstalledAt = string(s)
	}
	if l, ok := get("sources").(*image.List); ok {
		for _, e := range l.Elems {
			d, _ := e.(*image.Dict)
			title, _ := d.Get(image.String("title"))
			pos, _ := d.Get(image.String("position"))
			doc, _ := d.Get(image.String("doc"))
			t, _ := title.(image.String)
			n, _ := pos.(image.Int)
			id, _ := doc.(image.String)
			p.Sources = append(p.Sources, fmt.Sprintf("%s#%d (%s)", t, n, id))
		}
	}
	switch prev := get("previous").(type) {
	case image.NoneType:
		p.Previous = "nothing"
	case *image.Dict:
		if _, ok := prev.Get(image.String("method")); ok {
			p.Previous = "a method"
		} else {
			p.Previous = "a value"
		}
	}
	return p
}

func strs(v image.Value) []string {
	l, _ := v.(*image.List)
	if l == nil {
		return nil
	}
	out := make([]string, 0, len(l.Elems))
	for _, e := range l.Elems {
		if s, ok := e.(image.String); ok {
			out = append(out, string(s))
		} else {
			out = append(out, image.Repr(e))
		}
	}
	return out
}

// listCycles lists up to limit cycles (every one for 0), newest first.
// Cycles whose objects cannot be read are reported in the error, with
// the others still listed.
func listCycles(ctx context.Context, db *image.DB, limit int) ([]CycleView, error) {
	var views []CycleView
	var listErr error
	err := db.View(ctx, func(tx *image.Tx) error {
		cs, err := cycle.List(tx)
		listErr = err
		if cs == nil && err != nil {
			return err
		}
		slices.Reverse(cs)
		if limit > 0 && len(cs) > limit {
			cs = cs[:limit]
		}
		names := tx.NamesByOID()
		for _, c := range cs {
			views = append(views, viewCycle(tx, names, c, false))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list cycles: %w", err)
	}
	if listErr != nil {
		return views, fmt.Errorf("list cycles: %w", listErr)
	}
	return views, nil
}

// showCycle reads cycle id with everything recorded in it.
func showCycle(ctx context.Context, db *image.DB, id int64) (*CycleView, error) {
	var v CycleView
	err := db.View(ctx, func(tx *image.Tx) error {
		c, err := cycle.Load(tx, id)
		if err != nil {
			return err
		}
		if err := cycle.LoadPrompts(tx, c); err != nil {
			return err
		}
		v = viewCycle(tx, tx.NamesByOID(), c, true)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// cycleState reads cycle id's state, without the prompts and provenance
// showCycle reads.
func cycleState(ctx context.Context, db *image.DB, id int64) (cycle.State, error) {
	var state cycle.State
	err := db.View(ctx, func(tx *image.Tx) error {
		c, err := cycle.Load(tx, id)
		if err == nil {
			state = c.State
		}
		return err
	})
	return state, err
}
