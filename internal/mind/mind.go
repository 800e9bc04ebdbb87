package mind

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"batos/internal/image"
	"batos/internal/llm"
)

// Options configures a Mind; nil means the defaults.
type Options struct {
	// CacheDir is where adapters are written for servers that read files.
	CacheDir string
	// Now is the clock call records use; default time.Now.
	Now func() time.Time
	// Logger reports what cannot be returned (a call record that could
	// not be saved); default slog.Default().
	Logger *slog.Logger
}

// Mind lets personas speak through one server. It is safe for
// concurrent use.
type Mind struct {
	db      *image.DB
	server  *Server
	manager *Manager
	now     func() time.Time
	log     *slog.Logger

	// recording serialises the mind's own call records: they all change
	// pLLM, and concurrent Asks would otherwise conflict past the image's
	// retries and lose their records.
	recording sync.Mutex

	mu      sync.Mutex
	windows map[string]int // model → context length, as the server reported it
}

// New returns a Mind for the image and server.
func New(db *image.DB, server *Server, opts *Options) *Mind {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Mind{db: db, server: server, manager: NewManager(db, server, o.CacheDir), now: o.Now, log: o.Logger, windows: map[string]int{}}
}

// Server is the server the mind speaks through.
func (m *Mind) Server() *Server { return m.server }

// Manager is the mind's memory manager.
func (m *Mind) Manager() *Manager { return m.manager }

// Request is what a persona is asked.
type Request struct {
	Persona string
	// Messages follow the persona's system prompt.
	Messages []llm.Message
	// Schema, if set, is the JSON schema the answer must follow.
	Schema json.RawMessage
	// Stream, if set, receives the answer as it is produced. An answer
	// cut off and asked again (see Ask) is streamed again from its
	// start.
	Stream func(llm.Chunk) error
	// DeferRecord leaves saving a successful call's record to the caller
	// (RecordIn, in the transaction that records the answer): one commit
	// instead of two. A failed call, and a cut answer asked again, are
	// still recorded by Ask.
	DeferRecord bool
}

// Answer is a persona's answer and the record of the call.
type Answer struct {
	Text string
	Call Call
}

// Ask puts req to its persona: it reads the persona, brings its adapter
// to the hot tier, calls the server outside any transaction, and records
// the call (success or failure) in the image. A failed call returns its
// error; the record is saved either way. A record that cannot be saved
// is logged, and the answer is still returned: it was paid for.
//
// Every call has an answer budget (Persona.AnswerBudget) and a context
// window sized for the prompt and the budget (see fit). A prompt that
// cannot fit the model's context is not sent: the error is a
// *llm.PromptTooLongError. An answer cut off (at its budget, or by the
// server, as Ollama's repetition guard does) is recorded as a failed
// call saying so and asked again once with the budget doubled, within
// MaxAnswerBudget and the window (see raise); if that answer is cut
// too, or there is no room to ask again, the error is a *llm.CutError.
func (m *Mind) Ask(ctx context.Context, req Request) (*Answer, error) {
	var p *Persona
	err := m.db.View(ctx, func(tx *image.Tx) error {
		var err error
		p, err = LoadPersona(tx, req.Persona)
		return err
	})
	if err != nil {
		return nil, err
	}
	msgs := make([]llm.Message, 0, len(req.Messages)+1)
	if p.SystemPrompt != "" {
		msgs = append(msgs, llm.Message{Role: llm.RoleSystem, Content: p.SystemPrompt})
	}
	msgs = append(msgs, req.Messages...)
	budget := p.AnswerBudget()
	for ask := 1; ; ask++ {
		call := Call{Persona: p.Name, At: m.now()}
		resp, err := m.speak(ctx, p, req, msgs, budget, &call)
		if err == nil {
			call.PromptTokens, call.CompletionTokens = resp.Usage.PromptTokens, resp.Usage.CompletionTokens
			if resp.Timings.Latency > 0 {
				call.Latency = resp.Timings.Latency
			}
		}
		if err == nil && resp.Cut() {
			cut := &llm.CutError{Model: call.Model, Reason: resp.FinishReason, Tokens: resp.Usage.CompletionTokens, Budget: budget, Asks: ask}
			if next := m.raise(ctx, p, call.Model, msgs, budget); ask == 1 && next > 0 {
				call.Outcome = fmt.Sprintf("%v; asked again with a budget of %d tokens", cut, next)
				observeCall(call, true, nil)
				m.record(ctx, call)
				budget = next
				continue
			}
			err = cut
		}
		return m.answer(ctx, req, call, resp, err)
	}
}

// answer finishes Ask: it records the call, unless the caller records
// a successful one, and returns the answer or err.
func (m *Mind) answer(ctx context.Context, req Request, call Call, resp *llm.ChatResponse, err error) (*Answer, error) {
	call.Outcome = "ok"
	if err != nil {
		call.Outcome = err.Error()
	}
	observeCall(call, false, err)
	if err == nil && req.DeferRecord {
		return &Answer{Text: resp.Text, Call: call}, nil
	}
	m.record(ctx, call)
	if err != nil {
		return nil, err
	}
	return &Answer{Text: resp.Text, Call: call}, nil
}

// record saves call, even when the caller has given up: the call
// happened. A record that cannot be saved is logged.
func (m *Mind) record(ctx context.Context, call Call) {
	m.recording.Lock()
	err := Record(context.WithoutCancel(ctx), m.db, call)
	m.recording.Unlock()
	if err != nil && !errors.Is(err, context.Canceled) {
		m.log.Error("mind: record call", "persona", call.Persona, "err", err)
	}
}

// speak brings p's adapter to the hot tier, fits msgs and the answer
// budget in the model's context, and makes the chat, filling in call's
// model, adapter and latency (the chat's, not the preparation's: a blob
// push can take minutes once). A model the manager had prepared and the
// server no longer has (it restarted and forgot a vLLM adapter, or
// someone deleted the Ollama model) is prepared again, once.
func (m *Mind) speak(ctx context.Context, p *Persona, req Request, msgs []llm.Message, budget int, call *Call) (*llm.ChatResponse, error) {
	for attempt := 0; ; attempt++ {
		route, err := m.manager.Prepare(ctx, p)
		call.Model, call.Adapter = route.Model, route.Adapter
		var opts llm.Options
		if err == nil {
			opts, err = m.fit(ctx, p, route.Model, msgs, budget)
		}
		if err != nil {
			call.Latency = m.now().Sub(call.At)
			return nil, err
		}
		start := m.now()
		resp, err := m.server.Client.Chat(ctx, &llm.ChatRequest{
			Model: route.Model, Messages: msgs, Schema: req.Schema, Options: opts, LoRA: route.LoRA, Stream: req.Stream,
		})
		call.Latency = m.now().Sub(start)
		var api *llm.APIError
		if attempt == 0 && errors.As(err, &api) && api.Status == http.StatusNotFound && !api.InStream && m.manager.Forget(route.Model) {
			m.forgetContext(route.Model)
			continue
		}
		return resp, err
	}
}

// Placements reports every persona's tier on the server.
func (m *Mind) Placements(ctx context.Context) ([]Placement, error) {
	var personas []*Persona
	err := m.db.View(ctx, func(tx *image.Tx) error {
		var err error
		personas, err = LoadPersonas(tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return m.manager.Observe(ctx, personas)
}
