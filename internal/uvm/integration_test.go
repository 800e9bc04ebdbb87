//go:build integration

// This test runs whole cognitive cycles against a real Ollama:
//
//	BATOS_TEST_OLLAMA=http://127.0.0.1:11434 go test -tags integration -run Integration -v ./internal/uvm
//
// The mind's default model is the generated tiny llama
// (internal/gguf/gguftest). Its weights are random, so it cannot learn
// anything: what is tested is that a send of a message nothing
// understands ends in a failed cycle (not a hang, a panic or an internal
// error), with every model call recorded, and nothing installed. Each
// model it creates is batos-it-cycle-*; at the end it is unloaded
// (keep_alive 0) and deleted, and may not stay loaded.
package uvm_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"batos/internal/command"
	"batos/internal/cycle"
	"batos/internal/gguf"
	"batos/internal/gguf/gguftest"
	"batos/internal/image"
	"batos/internal/llm"
	"batos/internal/llm/ollama"
	"batos/internal/mind"
	"batos/internal/uvm"
	"batos/internal/uvm/uvmtest"
)

// learnTimeout bounds the send's wait for its cycle: a cycle still
// running then is a hang. It stays under go test's default 10 minutes.
const learnTimeout = 8 * time.Minute

// unknownSelector is a message nothing in the image understands.
const unknownSelector = "tally_the_unseen_moons"

func TestIntegrationCycleFailsCleanly(t *testing.T) {
	url := os.Getenv("BATOS_TEST_OLLAMA")
	if url == "" {
		t.Skip("BATOS_TEST_OLLAMA is not set (e.g. http://127.0.0.1:11434)")
	}
	client, err := ollama.New(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		// window, if set, is the model's declared context length and
		// every persona's num_ctx.
		window int
	}{
		// As generated, the model declares a context of 128 tokens:
		// BRICK's prompt cannot fit, and is refused before it is sent.
		{name: "generated", window: 0},
		// Widened, BRICK's prompts reach the model, and what it answers
		// is refused or cut. The tiny model's vocabulary takes about a
		// token a byte, three times batos's estimate (high for real
		// vocabularies), so the personas get a num_ctx that holds the
		// cycle's prompts rather than a window sized from the estimate.
		{name: "widened", window: 16384},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, model, personas := openWithTinyModel(t, client, url, tc.name, tc.window)
			c := sendUnknown(t, u)
			checkSteps(t, c, model)
			calls := checkCalls(t, u, c, model, personas)
			if got := eval(t, u, fmt.Sprintf("genesis.responds_to(%q)", unknownSelector)); got != "False" {
				t.Errorf("after a failed cycle genesis.responds_to(%q) = %s, want False: nothing installed", unknownSelector, got)
			}

			brick := calls["BRICK"]
			if len(brick) == 0 {
				t.Fatal("BRICK was never asked")
			}
			tooLong := func(call mind.Call) bool { return strings.Contains(call.Outcome, "fit its context") }
			switch {
			case tc.window == 0 && (len(c.Steps) != 0 || len(brick) != 1 || !tooLong(brick[0])):
				t.Errorf("steps %+v, BRICK's calls %+v; want no step and BRICK's one call refused as too long for the context", c.Steps, brick)
			case tc.window > 0 && tooLong(brick[0]):
				t.Errorf("BRICK's first call %+v: the widened window did not hold the prompt", brick[0])
			}
		})
	}
}

// openWithTinyModel creates a model on the server from the generated
// tiny llama (declaring a context of window tokens, if set), and opens a
// fresh image whose mind uses it as the default model (with every
// persona's num_ctx window, if set). The model is unloaded and deleted
// when t ends.
func openWithTinyModel(t *testing.T, client *ollama.Client, url, name string, window int) (u *uvm.UVM, model string, personas []string) {
	t.Helper()
	weights := gguftest.TinyLlama(3)
	if window > 0 {
		weights = withContext(t, weights, uint32(window))
	}
	model = fmt.Sprintf("batos-it-cycle-%s-%s", name, time.Now().Format("150405"))
	t.Cleanup(func() { releaseModel(t, client, model) })
	createModel(t, client, model, weights)
	server, err := mind.Connect(t.Context(), mind.ServerConfig{URL: url, API: mind.APIOllama, Model: model})
	if err != nil {
		t.Fatalf("BATOS_TEST_OLLAMA=%s: %v", url, err)
	}
	u = uvmtest.Open(t, &uvm.Options{Mind: server})
	personas = personaNames(t, u)
	if window > 0 {
		for _, p := range personas {
			eval(t, u, fmt.Sprintf(`personas.%s.options = {"num_ctx": %d, "seed": 7}`, p, window))
		}
	}
	return u, model, personas
}

// sendUnknown sends genesis unknownSelector and returns the cycle that
// tried to learn it, failing t unless the send ends as a failed cycle
// (learning_failed): not one still running at learnTimeout, nor an
// internal error.
func sendUnknown(t *testing.T, u *uvm.UVM) *cycle.Cycle {
	t.Helper()
	start := time.Now()
	_, err := u.SendWith(t.Context(), "genesis", unknownSelector, nil, nil, command.Learn{Timeout: learnTimeout})
	var le *command.LearningError
	if !errors.As(err, &le) || command.KindOf(err) != command.KindLearningFailed {
		t.Fatalf("send after %v: %v (kind %s); want a failed cycle (learning_failed), not one still running at the timeout, nor an internal error",
			time.Since(start).Round(time.Millisecond), err, command.KindOf(err))
	}
	c, err := u.Cycles().Get(t.Context(), le.Cycle)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cycle %d failed in %s after %v: %s", c.ID, c.FailedIn, time.Since(start).Round(time.Millisecond), c.Reason)
	if c.State != cycle.Failed || c.Reason == "" {
		t.Errorf("cycle %d is %s with reason %q, want FAILED saying why", c.ID, c.State, c.Reason)
	}
	return c
}

// checkSteps fails t unless every recorded step names its persona and
// model, counts its tokens and latency, and every refused answer says
// why.
func checkSteps(t *testing.T, c *cycle.Cycle, model string) {
	t.Helper()
	lastAttempt := 0
	for i, s := range c.Steps {
		t.Logf("step %d: %s by %s (attempt %d): %d+%d tokens, %.0f ms, rejected %q",
			i, s.Kind, s.Persona, s.Attempt, s.PromptTokens, s.CompletionTokens, s.LatencyMS, s.Rejected)
		if s.Persona == "" || s.Model != model || s.PromptTokens <= 0 || s.CompletionTokens <= 0 || s.LatencyMS <= 0 || s.At.IsZero() {
			t.Errorf("step %d is recorded as %+v: want its persona, model %s, tokens, latency and time", i, s, model)
		}
		// Without a plan the cycle never left DECOMPOSING: each plan was
		// refused, and must say why.
		if s.Kind == cycle.StepPlan && c.Plan == nil && s.Rejected == "" {
			t.Errorf("step %d: a plan the cycle did not take, with no reason recorded: %q", i, s.Answer)
		}
		if s.Kind == cycle.StepSynthesize {
			lastAttempt = max(lastAttempt, s.Attempt)
		}
	}
	// Every candidate an attempt followed was refused with a reason; the
	// last one's failure may be the cycle's own reason instead.
	for _, s := range c.Steps {
		if s.Kind != cycle.StepSynthesize || s.Attempt == lastAttempt {
			continue
		}
		if f, ok := failureOf(c, s.Attempt); !ok || f.Message == "" {
			t.Errorf("attempt %d was refused without a reason: failures %+v", s.Attempt, c.Failures)
		}
	}
	for _, f := range c.Failures {
		if f.Kind == "" || f.Message == "" {
			t.Errorf("failure %+v does not say why", f)
		}
	}
}

func failureOf(c *cycle.Cycle, attempt int) (cycle.Failure, bool) {
	for _, f := range c.Failures {
		if f.Attempt == attempt {
			return f, true
		}
	}
	return cycle.Failure{}, false
}

// checkCalls fails t unless each persona's usage counts exactly its
// recorded calls; every call names the model and has a latency, every
// successful one its tokens and every failed one why; and each
// persona's successful calls are its steps in the cycle. It returns the
// calls by persona.
func checkCalls(t *testing.T, u *uvm.UVM, c *cycle.Cycle, model string, personas []string) map[string][]mind.Call {
	t.Helper()
	steps := map[string]int{}
	for _, s := range c.Steps {
		steps[s.Persona]++
	}
	out := map[string][]mind.Call{}
	err := u.DB().View(t.Context(), func(tx *image.Tx) error {
		for _, name := range personas {
			p, err := mind.LoadPersona(tx, name)
			if err != nil {
				return err
			}
			calls, err := mind.RecentCalls(tx, name)
			if err != nil {
				return err
			}
			out[name] = calls
			var sum mind.Usage
			for i, call := range calls {
				t.Logf("%s call %d: %s, %d+%d tokens, %v: %s", name, i, call.Model, call.PromptTokens, call.CompletionTokens, call.Latency, call.Outcome)
				if call.Persona != name || call.Model != model || call.Latency <= 0 || call.At.IsZero() || call.Outcome == "" {
					t.Errorf("%s call %d is recorded as %+v: want its persona, model %s, latency, time and outcome", name, i, call, model)
				}
				if call.OK() && (call.PromptTokens <= 0 || call.CompletionTokens <= 0) {
					t.Errorf("%s call %d succeeded with no tokens counted: %+v", name, i, call)
				}
				sum.Calls++
				if !call.OK() {
					sum.Failures++
				}
				sum.PromptTokens += int64(call.PromptTokens)
				sum.CompletionTokens += int64(call.CompletionTokens)
			}
			got := p.Usage
			got.Latency = 0
			if got != sum {
				t.Errorf("%s's usage is %+v, its calls add up to %+v", name, got, sum)
			}
			if ok := sum.Calls - sum.Failures; ok != int64(steps[name]) {
				t.Errorf("%s: %d successful calls, %d steps in the cycle; want one step for each", name, ok, steps[name])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func personaNames(t *testing.T, u *uvm.UVM) []string {
	t.Helper()
	var names []string
	err := u.DB().View(t.Context(), func(tx *image.Tx) error {
		ps, err := mind.LoadPersonas(tx)
		for _, p := range ps {
			names = append(names, p.Name)
		}
		return err
	})
	if err != nil || len(names) == 0 {
		t.Fatalf("personas %v: %v", names, err)
	}
	return names
}

// withContext returns a copy of a generated llama model that declares a
// context of n tokens: the value of llama.context_length, a uint32,
// rewritten in place.
func withContext(t *testing.T, model []byte, n uint32) []byte {
	t.Helper()
	key := []byte("llama.context_length")
	i := bytes.Index(model, key)
	at := i + len(key) // the value's type, then the value
	if i < 0 || binary.LittleEndian.Uint32(model[at:]) != uint32(gguf.TypeUint32) {
		t.Fatal("the generated model has no uint32 llama.context_length")
	}
	out := bytes.Clone(model)
	binary.LittleEndian.PutUint32(out[at+4:], n)
	f, err := gguf.Read(bytes.NewReader(out), int64(len(out)))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := f.Uint("llama.context_length"); got != uint64(n) || gguf.CheckModel(f) != nil {
		t.Fatalf("rewritten model declares a context of %d (want %d), check: %v", got, n, gguf.CheckModel(f))
	}
	return out
}

// createModel pushes weights as a blob and creates model from it.
func createModel(t *testing.T, c *ollama.Client, model string, weights []byte) {
	t.Helper()
	sum := sha256.Sum256(weights)
	digest := hex.EncodeToString(sum[:])
	open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(weights)), nil }
	if err := c.PushBlob(t.Context(), digest, open, int64(len(weights))); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(t.Context(), &llm.CreateRequest{Model: model, Files: map[string]string{"tiny.gguf": "sha256:" + digest}}); err != nil {
		t.Fatalf("create %s: %v", model, err)
	}
}

// releaseModel unloads model (keep_alive 0) and deletes it, and fails t
// if it stays loaded.
func releaseModel(t *testing.T, c *ollama.Client, model string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Unload(ctx, model); err != nil && !errors.Is(err, llm.ErrModelNotFound) {
		t.Errorf("unload %s: %v", model, err)
	}
	if err := c.Delete(ctx, model); err != nil && !errors.Is(err, llm.ErrModelNotFound) {
		t.Errorf("delete %s: %v", model, err)
	}
	// Ollama unloads a runner just after it answers keep_alive 0.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		loaded, err := c.Loaded(ctx)
		if err != nil {
			t.Errorf("ps: %v", err)
			return
		}
		var still bool
		for _, name := range loaded {
			still = still || strings.TrimSuffix(name, ":latest") == model
		}
		if !still {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s is still loaded after unloading it", model)
			return
		}
	}
}
