// Package llmtest helps test code that talks to inference servers
// without one: Model is a scripted llm.Model, and the fake servers
// (NewOllama, NewOpenAI) speak the real HTTP APIs — NDJSON and SSE
// streams, error bodies, blobs, adapters — answering from a Responder, so
// the real clients can be tested end to end offline.
package llmtest

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"batos/internal/llm"
)

// Reply is one scripted answer: Text (split into Chunks when streamed),
// or Err.
type Reply struct {
	Text   string
	Err    error
	Usage  llm.Usage
	Chunks []string // if set, the stream's pieces (their concatenation should be Text)
	Delay  time.Duration
	// FinishReason is why the answer ended; default llm.FinishStop. A
	// scripted answer cut at its budget says llm.FinishLength.
	FinishReason string
}

// Model is a scripted llm.Model. Chat answers with the next scripted
// Reply, or with Respond when set; every request is recorded. Embed
// returns deterministic unit vectors derived from each text's hash. It
// is safe for concurrent use.
type Model struct {
	// Respond, if set, answers every chat call instead of the script.
	Respond func(ctx context.Context, req *llm.ChatRequest) (Reply, error)
	// Dim is the embedding width; default 16.
	Dim int

	mu     sync.Mutex
	script []Reply
	calls  []llm.ChatRequest
	embeds []llm.EmbedRequest
}

// ErrScriptExhausted is returned by Chat when no scripted reply is left.
var ErrScriptExhausted = errors.New("llmtest: script exhausted")

// NewModel returns a Model that answers with replies in order.
func NewModel(replies ...Reply) *Model {
	return &Model{script: replies}
}

// Texts returns a Model answering with each text in order.
func Texts(texts ...string) *Model {
	m := &Model{}
	for _, t := range texts {
		m.script = append(m.script, Reply{Text: t})
	}
	return m
}

// Add appends replies to the script.
func (m *Model) Add(replies ...Reply) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.script = append(m.script, replies...)
}

// Calls returns copies of the chat requests received so far, in order.
func (m *Model) Calls() []llm.ChatRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]llm.ChatRequest(nil), m.calls...)
}

// CallCount is len(Calls()).
func (m *Model) CallCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.calls)
}

// Embeds returns the embedding requests received so far.
func (m *Model) Embeds() []llm.EmbedRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]llm.EmbedRequest(nil), m.embeds...)
}

var _ llm.Model = (*Model)(nil)

// Chat implements llm.Model.
func (m *Model) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	start := time.Now()
	r, err := m.next(ctx, req)
	if err != nil {
		return nil, err
	}
	if r.Delay > 0 {
		t := time.NewTimer(r.Delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	if r.Err != nil {
		return nil, r.Err
	}
	if req.Stream != nil {
		for _, piece := range r.pieces() {
			if err := req.Stream(llm.Chunk{Text: piece}); err != nil {
				return nil, err
			}
		}
	}
	usage := r.Usage
	if usage == (llm.Usage{}) {
		usage = llm.Usage{PromptTokens: countWords(req.Messages), CompletionTokens: len(strings.Fields(r.Text))}
	}
	finish := r.FinishReason
	if finish == "" {
		finish = llm.FinishStop
	}
	return &llm.ChatResponse{
		Text: r.Text, Model: req.Model, FinishReason: finish, Usage: usage,
		Timings: llm.Timings{Latency: time.Since(start)},
	}, nil
}

func (m *Model) next(ctx context.Context, req *llm.ChatRequest) (Reply, error) {
	m.mu.Lock()
	cp := *req
	cp.Messages = append([]llm.Message(nil), req.Messages...)
	cp.Stream = nil
	m.calls = append(m.calls, cp)
	n := len(m.calls)
	respond := m.Respond
	var r Reply
	ok := len(m.script) > 0
	if ok {
		r, m.script = m.script[0], m.script[1:]
	}
	m.mu.Unlock()
	if respond != nil {
		return respond(ctx, req)
	}
	if !ok {
		return Reply{}, fmt.Errorf("%w after %d calls", ErrScriptExhausted, n-1)
	}
	return r, nil
}

func (r Reply) pieces() []string {
	if len(r.Chunks) > 0 {
		return r.Chunks
	}
	// Split after every space so the stream has several pieces.
	var out []string
	rest := r.Text
	for rest != "" {
		i := strings.IndexByte(rest, ' ')
		if i < 0 {
			out = append(out, rest)
			break
		}
		out = append(out, rest[:i+1])
		rest = rest[i+1:]
	}
	return out
}

func countWords(msgs []llm.Message) int {
	n := 0
	for _, msg := range msgs {
		n += len(strings.Fields(msg.Content))
	}
	return n
}

// Embed implements llm.Model with unit vectors derived from each text's
// sha256: equal texts get equal vectors.
func (m *Model) Embed(ctx context.Context, req *llm.EmbedRequest) (*llm.EmbedResponse, error) {
	m.mu.Lock()
	m.embeds = append(m.embeds, llm.EmbedRequest{Model: req.Model, Input: append([]string(nil), req.Input...)})
	dim := m.Dim
	m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if dim <= 0 {
		dim = 16
	}
	resp := &llm.EmbedResponse{Model: req.Model}
	for _, text := range req.Input {
		resp.Vectors = append(resp.Vectors, HashVector(text, dim))
		resp.Usage.PromptTokens += len(strings.Fields(text))
	}
	return resp, nil
}

// HashVector is the deterministic unit vector Model.Embed gives text.
func HashVector(text string, dim int) []float32 {
	v := make([]float32, dim)
	var norm float64
	block := sha256.Sum256([]byte(text))
	for i := range v {
		if i > 0 && i%8 == 0 {
			block = sha256.Sum256(block[:])
		}
		x := float64(int32(binary.LittleEndian.Uint32(block[(i%8)*4:]))) / math.MaxInt32
		v[i] = float32(x)
		norm += x * x
	}
	norm = math.Sqrt(norm)
	for i := range v {
		v[i] = float32(float64(v[i]) / norm)
	}
	return v
}
