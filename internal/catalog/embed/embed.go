package embed

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"batos/internal/llm"
)

// Defaults of Options.
const (
	DefaultBatch       = 32
	DefaultBatchTokens = 8192
)

// ErrOptions is returned by Options.Validate for options that cannot
// hold.
var ErrOptions = errors.New("embed: invalid options")

// Options configure an Embedder. The zero value means the defaults.
type Options struct {
	// Batch is the most texts a request asks for; 0 means
	// DefaultBatch.
	Batch int
	// BatchTokens caps a request's estimated tokens (llm.TextTokens of
	// its texts, summed); 0 means DefaultBatchTokens. A text estimated
	// over it is asked for alone.
	BatchTokens int
	// Account, if set, is told of every request made, whether it
	// succeeded or failed, for usage accounting. It is called from the
	// goroutine running Embed, after the request and before its vectors
	// are cached, and should return quickly.
	Account func(Call)
}

// Validate checks that no field is negative.
func (o *Options) Validate() error {
	if o.Batch < 0 || o.BatchTokens < 0 {
		return fmt.Errorf("%w: batch of %d texts and %d tokens", ErrOptions, o.Batch, o.BatchTokens)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Batch == 0 {
		o.Batch = DefaultBatch
	}
	if o.BatchTokens == 0 {
		o.BatchTokens = DefaultBatchTokens
	}
	return o
}

// Call is the record of one embedding request.
type Call struct {
	Model string
	// Inputs is the number of texts asked for.
	Inputs int
	// PromptTokens is the server's count, 0 when it reports none.
	PromptTokens int
	// Latency is the request's wall time as Embed saw it.
	Latency time.Duration
	// Err is nil for a request that was answered with good vectors;
	// otherwise the request's error or what was wrong with its answer.
	Err error
	// At is when the request was made.
	At time.Time
}

// Stats count what one Embed did. Cached and Fetched count distinct
// texts, so after a successful Embed, Texts - Cached - Fetched is the
// number of repeated texts.
type Stats struct {
	Texts        int // texts given
	Cached       int // distinct texts found in the cache
	Fetched      int // distinct texts asked for and answered
	Requests     int // requests made, failed ones included
	PromptTokens int // summed over the requests, as the server reported them
}

// Embedder embeds texts with one model, through a cache. It is safe for
// concurrent use; concurrent Embeds of the same new text may each ask
// for it.
type Embedder struct {
	client llm.Model
	model  string
	cache  *Cache
	opts   Options

	mu    sync.Mutex
	width int // the model's width, learned without a cache
}

// New returns an Embedder asking client for model's vectors, keeping
// them in cache. A nil cache keeps nothing between calls: every Embed
// asks for every distinct text, and the model's width is learned by the
// Embedder alone. opts may be nil. New panics if client is nil or opts
// are not valid (Options.Validate).
func New(client llm.Model, model string, cache *Cache, opts *Options) *Embedder {
	if client == nil {
		panic("embed: New with a nil client")
	}
	if opts == nil {
		opts = &Options{}
	}
	if err := opts.Validate(); err != nil {
		panic(err)
	}
	return &Embedder{client: client, model: model, cache: cache, opts: opts.withDefaults()}
}

// Model is the model the Embedder asks.
func (e *Embedder) Model() string { return e.model }

// Cached returns text's vector if the cache holds it, making no
// request: for callers that must not wait on the network (a Starlark
// method's search). Without a cache, or when the cache cannot read the
// vector (an error Embed would report), it reports false.
func (e *Embedder) Cached(text string) ([]float32, bool) {
	if e.cache == nil {
		return nil, false
	}
	v, ok, err := e.cache.Get(e.model, text)
	return v, ok && err == nil
}

// Embed returns one vector per text, in order. Vectors already in the
// cache cost no request; the others are asked for in batches, and each
// batch's vectors are written to the cache as soon as it returns, so a
// failure mid-way keeps what was paid for and a retry resumes. Identical
// texts within one call are asked for once (each gets its own copy of
// the vector).
//
// Embed does not retry: the llm clients retry transient failures
// themselves (llm.Retry). It checks every answer: a vector for each
// text, finite, not zero, and all of the model's width, which the first
// vector sets and the cache keeps. A bad answer is an error wrapping
// llm.ErrBadResponse; a vector of another width than the model's, one
// wrapping ErrWidth (the model behind the name changed: delete the
// cache). Nothing of a bad answer is cached. Errors name the model and
// how many of the texts were done; the Stats count what was done before
// the error. ctx is checked before each request.
func (e *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, Stats, error) {
	st := Stats{Texts: len(texts)}
	uniq, at := distinct(texts)
	vecs := make([][]float32, len(uniq))
	fail := func(err error) ([][]float32, Stats, error) {
		done := 0
		for _, u := range at {
			if vecs[u] != nil {
				done++
			}
		}
		return nil, st, fmt.Errorf("embed: model %s: %d of %d texts done: %w", e.model, done, len(texts), err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	var todo []int
	for i, text := range uniq {
		if e.cache != nil {
			v, ok, err := e.cache.Get(e.model, text)
			if err != nil {
				return fail(err)
			}
			if ok {
				vecs[i] = v
				st.Cached++
				continue
			}
		}
		todo = append(todo, i)
	}
	for _, batch := range e.batches(uniq, todo) {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		if err := e.fetch(ctx, uniq, batch, vecs, &st); err != nil {
			return fail(err)
		}
	}
	out := make([][]float32, len(texts))
	seen := make([]bool, len(uniq))
	for i, u := range at {
		out[i] = vecs[u]
		if seen[u] {
			out[i] = slices.Clone(vecs[u])
		}
		seen[u] = true
	}
	return out, st, nil
}

// distinct returns the distinct texts, in order of first appearance, and
// for each text the index of its distinct one.
func distinct(texts []string) ([]string, []int) {
	index := make(map[string]int, len(texts))
	var uniq []string
	at := make([]int, len(texts))
	for i, t := range texts {
		u, ok := index[t]
		if !ok {
			u = len(uniq)
			index[t] = u
			uniq = append(uniq, t)
		}
		at[i] = u
	}
	return uniq, at
}

// batches splits todo, indexes of texts, into requests of at most
// opts.Batch texts and opts.BatchTokens estimated tokens.
func (e *Embedder) batches(texts []string, todo []int) [][]int {
	var out [][]int
	var cur []int
	tokens := 0
	for _, i := range todo {
		n := llm.TextTokens(texts[i])
		if len(cur) > 0 && (len(cur) == e.opts.Batch || tokens+n > e.opts.BatchTokens) {
			out = append(out, cur)
			cur, tokens = nil, 0
		}
		cur = append(cur, i)
		tokens += n
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// fetch asks for the texts of batch, checks the answer, accounts for the
// request, and caches the vectors into vecs and the cache, syncing it.
func (e *Embedder) fetch(ctx context.Context, texts []string, batch []int, vecs [][]float32, st *Stats) error {
	input := make([]string, len(batch))
	for k, i := range batch {
		input[k] = texts[i]
	}
	call := Call{Model: e.model, Inputs: len(input), At: time.Now()}
	resp, err := e.client.Embed(ctx, &llm.EmbedRequest{Model: e.model, Input: input})
	call.Latency = time.Since(call.At)
	if err == nil {
		call.PromptTokens = resp.Usage.PromptTokens
		err = e.check(resp.Vectors, len(input))
	}
	call.Err = err
	st.Requests++
	st.PromptTokens += call.PromptTokens
	if e.opts.Account != nil {
		e.opts.Account(call)
	}
	if err != nil {
		return err
	}
	for k, i := range batch {
		if e.cache != nil {
			if err := e.cache.Put(e.model, texts[i], resp.Vectors[k]); err != nil {
				return err
			}
		}
		vecs[i] = resp.Vectors[k]
	}
	if e.cache != nil {
		if err := e.cache.Sync(); err != nil {
			return err
		}
	}
	e.learn(len(resp.Vectors[0]))
	st.Fetched += len(batch)
	return nil
}

// check checks an answer of vectors for n texts.
func (e *Embedder) check(vectors [][]float32, n int) error {
	if len(vectors) != n {
		return fmt.Errorf("%w: %d vectors for %d texts", llm.ErrBadResponse, len(vectors), n)
	}
	want, known := e.knownWidth()
	for k, v := range vectors {
		switch {
		case len(v) == 0:
			return fmt.Errorf("%w: vector %d of the answer is empty", llm.ErrBadResponse, k)
		case known && len(v) != want:
			return fmt.Errorf("%w: vector %d of the answer has width %d, the model's vectors %d", ErrWidth, k, len(v), want)
		case len(v) != len(vectors[0]):
			return fmt.Errorf("%w: vector %d of the answer has width %d, vector 0 %d", llm.ErrBadResponse, k, len(v), len(vectors[0]))
		}
		var sum float64
		for j, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return fmt.Errorf("%w: vector %d of the answer has %v at %d", llm.ErrBadResponse, k, x, j)
			}
			sum += float64(x) * float64(x)
		}
		if sum == 0 {
			return fmt.Errorf("%w: vector %d of the answer is zero", llm.ErrBadResponse, k)
		}
	}
	return nil
}

// knownWidth is the model's width: the cache's, or without a cache the
// Embedder's own.
func (e *Embedder) knownWidth() (int, bool) {
	if e.cache != nil {
		return e.cache.Width(e.model)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.width, e.width > 0
}

// learn records the model's width when there is no cache to keep it.
func (e *Embedder) learn(width int) {
	if e.cache != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.width == 0 {
		e.width = width
	}
}
