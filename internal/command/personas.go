package command

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"batos/internal/image"
	"batos/internal/mind"
	"batos/internal/vm"
)

// The persona commands read the personas from the image and ask the
// mind's inference server where their adapters are (their tiers) or to
// bring them to the hot tier. The server is the one the process holding
// the image reaches: the CLI's for an image it opened, batos run's own
// mind for one it serves (Local.SetMind).

// PersonaView is a persona as the CLI and the bridge show it.
type PersonaView struct {
	Name  string `json:"name"`
	Role  string `json:"role"`
	Model string `json:"model"`
	// ModelIsDefault says the persona names no model of its own: Model is
	// the server's default (empty when there is none).
	ModelIsDefault bool   `json:"model_is_default,omitempty"`
	Adapter        string `json:"adapter,omitempty"` // the adapter's digest
	AdapterFile    string `json:"adapter_file,omitempty"`
	AdapterFormat  string `json:"adapter_format,omitempty"`
	// Temperature is nil when the persona leaves it to the server.
	Temperature *float64 `json:"temperature,omitempty"`
	// Tier is the adapter's tier on the server ("-" without an adapter,
	// "?" when unknown); Where names what serves it there; Problem says
	// what stands in the way.
	Tier         string     `json:"tier"`
	Where        string     `json:"where,omitempty"`
	Problem      string     `json:"problem,omitempty"`
	Usage        UsageView  `json:"usage"`
	SystemPrompt string     `json:"system_prompt,omitempty"`
	RecentCalls  []CallView `json:"recent_calls,omitempty"`
	// Options are the model options the persona sets (seed, max_tokens,
	// top_k, top_p, num_ctx, stop).
	Options map[string]any `json:"options,omitempty"`
}

// UsageView is a persona's call totals.
type UsageView struct {
	Calls            int64   `json:"calls"`
	Failures         int64   `json:"failures"`
	PromptTokens     int64   `json:"prompt_tokens"`
	CompletionTokens int64   `json:"completion_tokens"`
	MeanLatencyMS    float64 `json:"mean_latency_ms"`
}

// CallView is one recorded model call of a persona.
type CallView struct {
	At               time.Time `json:"at"`
	Model            string    `json:"model"`
	Adapter          string    `json:"adapter,omitempty"`
	PromptTokens     int       `json:"prompt_tokens"`
	CompletionTokens int       `json:"completion_tokens"`
	LatencyMS        float64   `json:"latency_ms"`
	Outcome          string    `json:"outcome"`
}

// PersonaReport is the personas and what the image and the inference
// server hold for them.
type PersonaReport struct {
	Personas []PersonaView `json:"personas"`
	// Note says why the tiers are unknown, when they are.
	Note string `json:"note,omitempty"`
	// Server describes the inference server the tiers were observed on
	// ("ollama at http://..."), or "" when none answered.
	Server string `json:"server,omitempty"`
	// BaseModel is the base model the image keeps, or nil.
	BaseModel *BaseModel `json:"base_model,omitempty"`
	// Recorded is the inference server the image records (batos run
	// records the one -llm names); a zero URL means none.
	Recorded RecordedServer `json:"recorded"`
}

// BaseModel is the GGUF base model kept in the image (batos model
// import).
type BaseModel struct {
	File         string `json:"file"`
	Name         string `json:"name,omitempty"`
	Architecture string `json:"architecture"`
	Digest       string `json:"digest"`
	Size         int64  `json:"size"`
}

// RecordedServer is the inference server an image records. Its API key
// is never stored.
type RecordedServer struct {
	URL   string `json:"url,omitempty"`
	API   string `json:"api,omitempty"`
	Model string `json:"model,omitempty"`
}

// PersonaEdit changes a persona; nil fields are left as they are.
type PersonaEdit struct {
	Role, SystemPrompt *string
	// Model names the server's model; "" means pLLM's default.
	Model       *string
	Temperature *float64
	// Adapter, if set, is stored in the image and attached: the absolute
	// path of a GGUF LoRA adapter file or a PEFT adapter directory, read
	// by the process that holds the image (the server, over a bridge).
	// ClearAdapter detaches the persona's adapter instead.
	Adapter      string
	ClearAdapter bool
	// Create makes the persona when the image has none by that name.
	Create bool
	// Progress is told how the adapter's copy goes. Only a local service
	// reports it.
	Progress mind.Progress
}

// check refuses an edit no server can carry out, before anything is
// stored.
func (e PersonaEdit) check(name string) error {
	switch {
	case name == "":
		return badRequest("a persona name is required")
	case e.Role == nil && e.SystemPrompt == nil && e.Model == nil && e.Temperature == nil && e.Adapter == "" && !e.ClearAdapter && !e.Create:
		return badRequest("persona %s: nothing to change", name)
	case e.Adapter != "" && !filepath.IsAbs(e.Adapter):
		return badRequest("adapter %q: want an absolute path (the process holding the image reads it)", e.Adapter)
	}
	me := mind.Edit{Temperature: e.Temperature, ClearAdapter: e.ClearAdapter}
	if e.Adapter != "" {
		me.Adapter = &mind.Imported{}
	}
	if err := me.Validate(); err != nil {
		return WithKind(ErrBadRequest, fmt.Errorf("persona %s: %w", name, err))
	}
	return nil
}

// PersonaChange is what a persona edit stored besides its slots: the
// adapter imported, or nil.
type PersonaChange struct {
	Adapter *mind.Imported
}

// WarmResult is how warming one persona went.
type WarmResult struct {
	Persona string
	// Ready says the persona's adapter (or model) is hot on Server, to be
	// called as Model, with the LoRA adapters of these IDs.
	Ready  bool
	Server string
	Model  string
	LoRA   []int
	// Problem says why it is not ready.
	Problem string
}

// SetMind says where the persona commands find the mind: find returns it
// (or why there is none), and the tiers are observed and adapters warmed
// on its server with its memory manager. model is the default model
// shown, while find fails, for personas that name none; "" means the one
// the image records. Without SetMind the tiers are unknown and warming
// is refused. Call it before the commands run.
func (l *Local) SetMind(find func(context.Context) (*mind.Mind, error), model string) {
	l.findMind, l.mindModel = find, model
}

func (l *Local) mindFor(ctx context.Context) (*mind.Mind, error) {
	if l.findMind == nil {
		return nil, mind.ErrNoServer
	}
	return l.findMind(ctx)
}

// Personas reports every persona, or only the one named, with its tier
// on the mind's server (unknown, with a note, when there is none) and,
// for one persona, its recent calls.
func (l *Local) Personas(ctx context.Context, only string) (PersonaReport, error) {
	db := l.rt.DB()
	var rep PersonaReport
	var personas []*mind.Persona
	var calls []mind.Call
	err := db.View(ctx, func(tx *image.Tx) error {
		if only == "" {
			var err error
			personas, err = mind.LoadPersonas(tx)
			return err
		}
		p, err := mind.LoadPersona(tx, only)
		if err != nil {
			return err
		}
		personas = []*mind.Persona{p}
		calls, err = mind.RecentCalls(tx, only)
		return err
	})
	if err != nil {
		return rep, personaError(err)
	}
	if rep.BaseModel, err = baseModel(ctx, l); err != nil {
		return rep, err
	}
	saved, err := mind.LoadServerConfig(ctx, db)
	if err != nil {
		return rep, err
	}
	rep.Recorded = RecordedServer{URL: saved.URL, API: string(saved.API), Model: saved.Model}
	defaultModel := l.mindModel
	if defaultModel == "" {
		defaultModel = saved.Model
	}
	placements := map[string]mind.Placement{}
	m, err := l.mindFor(ctx)
	switch {
	case errors.Is(err, mind.ErrNoServer):
		// Worded as every no-mind error is (vm.ErrNoMind).
		rep.Note = "tiers unknown: " + Message(vm.ErrNoMind)
		if why := mind.Unanswered(err); why != "" {
			rep.Note += " (" + why + ")"
		}
	case err != nil:
		rep.Note = "tiers unknown: " + Message(err)
	default:
		server := m.Server()
		pls, err := m.Manager().Observe(ctx, personas)
		if err != nil {
			rep.Note = "tiers unknown: " + server.Describe() + ": " + err.Error()
		}
		for _, pl := range pls {
			placements[pl.Persona] = pl
		}
		rep.Server, defaultModel = server.Describe(), server.DefaultModel
	}
	for _, p := range personas {
		rep.Personas = append(rep.Personas, personaView(p, defaultModel, placements, calls))
	}
	return rep, nil
}

func baseModel(ctx context.Context, l *Local) (*BaseModel, error) {
	w, err := mind.LoadWeights(ctx, l.rt.DB())
	if err != nil || w == nil {
		return nil, err
	}
	return &BaseModel{File: w.File, Name: w.Name, Architecture: w.Architecture, Digest: w.Blob.Digest.String(), Size: w.Blob.Size}, nil
}

func personaView(p *mind.Persona, defaultModel string, placements map[string]mind.Placement, calls []mind.Call) PersonaView {
	v := PersonaView{
		Name: p.Name, Role: p.Role, Model: p.Model, Temperature: p.Temperature, SystemPrompt: p.SystemPrompt,
		Usage: UsageView{Calls: p.Usage.Calls, Failures: p.Usage.Failures, PromptTokens: p.Usage.PromptTokens,
			CompletionTokens: p.Usage.CompletionTokens, MeanLatencyMS: ms(p.Usage.MeanLatency())},
		Options: optionsView(p),
	}
	if v.Model == "" {
		v.Model, v.ModelIsDefault = defaultModel, true
	}
	if p.HasAdapter() {
		v.Adapter, v.AdapterFile, v.AdapterFormat = p.Adapter.Digest.String(), p.AdapterFile, p.AdapterFormat
	}
	v.Tier = "?"
	if pl, ok := placements[p.Name]; ok {
		v.Tier, v.Where, v.Problem = pl.Tier.String(), pl.Where, pl.Problem
	} else if !p.HasAdapter() {
		v.Tier = mind.TierNone.String()
	}
	for _, c := range calls {
		v.RecentCalls = append(v.RecentCalls, CallView{At: c.At, Model: c.Model, Adapter: c.Adapter, PromptTokens: c.PromptTokens,
			CompletionTokens: c.CompletionTokens, LatencyMS: ms(c.Latency), Outcome: c.Outcome})
	}
	return v
}

func optionsView(p *mind.Persona) map[string]any {
	o := map[string]any{}
	if p.Options.Seed != nil {
		o["seed"] = *p.Options.Seed
	}
	if p.Options.MaxTokens > 0 {
		o["max_tokens"] = p.Options.MaxTokens
	}
	if p.Options.TopK > 0 {
		o["top_k"] = p.Options.TopK
	}
	if p.Options.TopP > 0 {
		o["top_p"] = p.Options.TopP
	}
	if p.Options.ContextSize > 0 {
		o["num_ctx"] = p.Options.ContextSize
	}
	if len(p.Options.Stop) > 0 {
		o["stop"] = p.Options.Stop
	}
	if len(o) == 0 {
		return nil
	}
	return o
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// personaError classifies an error reading a persona: an unknown
// persona is not_found.
func personaError(err error) error {
	if errors.Is(err, mind.ErrNoPersona) {
		return WithKind(ErrNotFound, err)
	}
	return err
}

// editError classifies an error editing a persona: an unknown persona is
// not_found; what the mind refuses of the edit itself (a name that is no
// persona name, a slot that holds something else, a value the persona
// could not be read back with) is the request's fault. Errors of the
// store keep their kinds, and a cancelled edit is no bad request.
func editError(err error) error {
	err = personaError(err)
	if KindOf(err) == KindInternal && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return WithKind(ErrBadRequest, err)
	}
	return err
}

// EditPersona changes a persona in one transaction. An adapter is checked
// (a complete GGUF LoRA adapter that fits the base model, unless the
// persona names a server model of its own; or a PEFT directory) and
// copied into the image before; an edit refused for itself or for an
// unknown persona is refused before the copy.
func (l *Local) EditPersona(ctx context.Context, name string, edit PersonaEdit) (PersonaChange, error) {
	if err := edit.check(name); err != nil {
		return PersonaChange{}, err
	}
	ctx = withTopic(ctx, TopicPersona) // the adapter's import, too
	db := l.rt.DB()
	me := mind.Edit{Role: edit.Role, SystemPrompt: edit.SystemPrompt, Model: edit.Model, Temperature: edit.Temperature,
		ClearAdapter: edit.ClearAdapter, Create: edit.Create}
	if edit.Adapter != "" {
		// The model the adapter must fit: the one given now, else the
		// persona's own, else pLLM's base.
		var p *mind.Persona
		err := db.View(ctx, func(tx *image.Tx) (err error) { p, err = mind.LoadPersona(tx, name); return })
		if errors.Is(err, mind.ErrNoPersona) && !edit.Create {
			// Refused before its adapter is copied into the image for nothing.
			return PersonaChange{}, personaError(err)
		}
		model := ""
		if err == nil {
			model = p.Model
		}
		if edit.Model != nil {
			model = *edit.Model
		}
		imp, err := mind.ImportAdapterFor(ctx, db, edit.Adapter, model, edit.Progress)
		err = fileError("adapter", err)
		if errors.Is(err, mind.ErrNotGGUF) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			err = WithKind(ErrBadRequest, err)
		}
		if err != nil {
			return PersonaChange{}, err
		}
		me.Adapter = imp
	}
	if err := me.Validate(); err != nil {
		return PersonaChange{}, editError(fmt.Errorf("persona %s: %w", name, err))
	}
	// In the pool, as a send: shutdown waits for it, and the bridge
	// publishes its commit.
	_, err := l.rt.Update(ctx, TopicPersona, func(tx *image.Tx) error {
		tx.Note("mind: edit persona " + name)
		return me.Apply(tx, name)
	})
	if err != nil {
		return PersonaChange{}, editError(err)
	}
	return PersonaChange{Adapter: me.Adapter}, nil
}

// WarmPersonas brings the named personas' adapters (every persona's, for
// none) to the hot tier on the mind's server now, rather than on their
// first call. Names the image does not have are refused before anything
// is warmed; a persona that cannot be warmed says why in its result.
func (l *Local) WarmPersonas(ctx context.Context, names []string) ([]WarmResult, error) {
	var personas []*mind.Persona
	err := l.rt.DB().View(ctx, func(tx *image.Tx) error {
		if len(names) == 0 {
			var err error
			personas, err = mind.LoadPersonas(tx)
			return err
		}
		for _, name := range names {
			p, err := mind.LoadPersona(tx, name)
			if err != nil {
				return err
			}
			personas = append(personas, p)
		}
		return nil
	})
	if err != nil {
		return nil, personaError(err)
	}
	m, err := l.mindFor(ctx)
	if err != nil {
		return nil, &vm.NoMindError{Doing: "warm personas", Why: mind.Unanswered(err)}
	}
	out := make([]WarmResult, len(personas))
	for i, p := range personas {
		r := WarmResult{Persona: p.Name, Server: m.Server().Describe()}
		route, err := m.Manager().Prepare(ctx, p)
		if err != nil {
			r.Problem = err.Error()
		} else {
			r.Ready, r.Model = true, route.Model
			for _, lr := range route.LoRA {
				r.LoRA = append(r.LoRA, lr.ID)
			}
		}
		out[i] = r
	}
	return out, nil
}
