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
	"unicode"

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
// returns deterministic unit vectors: by default derived from each
// text's hash (HashVector), or from Vectors when set. It is safe for
// concurrent use.
type Model struct {
	// Respond, if set, answers every chat call instead of the script.
	Respond func(ctx context.Context, req *llm.ChatRequest) (Reply, error)
	// Dim is the embedding width; default 16.
	Dim int
	// Vectors, if set, is the embedding Embed gives each text, at width
	// Dim: WordVector for tests that need texts sharing words to be
	// close (semantic chunking, vector search). nil means HashVector,
	// under which any two texts are as far apart as chance makes them.
	Vectors func(text string, dim int) []float32

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

// Embed implements llm.Model with a unit vector for each text from
// Vectors, or HashVector: equal texts get equal vectors.
func (m *Model) Embed(ctx context.Context, req *llm.EmbedRequest) (*llm.EmbedResponse, error) {
	m.mu.Lock()
	m.embeds = append(m.embeds, llm.EmbedRequest{Model: req.Model, Input: append([]string(nil), req.Input...)})
	dim, vectors := m.Dim, m.Vectors
	m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if dim <= 0 {
		dim = 16
	}
	if vectors == nil {
		vectors = HashVector
	}
	resp := &llm.EmbedResponse{Model: req.Model}
	for _, text := range req.Input {
		resp.Vectors = append(resp.Vectors, vectors(text, dim))
		resp.Usage.PromptTokens += len(strings.Fields(text))
	}
	return resp, nil
}

// HashVector is the deterministic unit vector Model.Embed gives text by
// default, derived from its sha256: equal texts get equal vectors, and
// different ones unrelated vectors, however many words they share.
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

// wordHashes is how many dimensions each word adds to in WordVector: a
// few, so that two words that collide in one dimension still differ in
// the others.
const wordHashes = 3

// stopWords are the English words WordVector ignores: they are in
// nearly every sentence, and would make texts on unrelated topics look
// alike.
var stopWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a an and are as at be been but by can did do does for from had has
		have he her his i if in into is it its me my no not of on or our she so than that the
		their them then there these they this those to was we were what when which who will
		with would you your`) {
		m[w] = true
	}
	return m
}()

// WordVector is a deterministic embedding in which texts that share
// words are close: a bag of words, for tests that need similarity to
// mean something (semantic chunking, vector search) without a model.
// Words are runs of letters and digits, lowercased; common English
// words (stopWords) are dropped. Each occurrence of a word adds ±1 to
// three dimensions picked, with their signs, by the word's sha256; the
// sum is scaled to unit length. Texts without shared words are near
// orthogonal (exactly so unless their words collide in a dimension,
// which a larger dim makes rarer). A text with no words left, or whose
// words cancel out, gets the fixed unit vector with every component
// 1/sqrt(dim): never a zero vector, which has no direction. WordVector
// panics if dim < 1.
func WordVector(text string, dim int) []float32 {
	if dim < 1 {
		panic(fmt.Sprintf("llmtest: WordVector width %d", dim))
	}
	sum := make([]float64, dim)
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	for _, w := range words {
		if stopWords[w] {
			continue
		}
		h := sha256.Sum256([]byte(w))
		for k := range wordHashes {
			x := binary.LittleEndian.Uint64(h[8*k:])
			sign := 1.0
			if x&1 == 1 {
				sign = -1
			}
			sum[(x>>1)%uint64(dim)] += sign
		}
	}
	var norm float64
	for _, x := range sum {
		norm += x * x
	}
	v := make([]float32, dim)
	if norm == 0 {
		for i := range v {
			v[i] = float32(1 / math.Sqrt(float64(dim)))
		}
		return v
	}
	norm = math.Sqrt(norm)
	for i, x := range sum {
		v[i] = float32(x / norm)
	}
	return v
}
