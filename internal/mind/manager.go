package mind

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"batos/internal/image"
	"batos/internal/llm"
)

// Tier is where a persona's adapter is.
type Tier int

// Tiers, from farthest to nearest.
const (
	TierNone Tier = iota // the persona has no adapter
	TierCold             // only a blob in the image
	TierWarm             // the server can use it without more work from batos
	TierHot              // active in the server
)

func (t Tier) String() string {
	switch t {
	case TierCold:
		return "cold"
	case TierWarm:
		return "warm"
	case TierHot:
		return "hot"
	}
	return "-"
}

// Placement is what the memory manager saw of one persona.
type Placement struct {
	Persona string
	Tier    Tier
	// Where names the server-side thing serving the persona (a model
	// name, a lora id).
	Where string
	// Problem says what stands in the way, if anything.
	Problem string
}

// Route is how to call the server for a persona.
type Route struct {
	Model   string
	LoRA    []llm.LoRA
	Adapter string // the adapter's digest, or empty
}

// ErrNoModel is returned when a persona names no model and the server
// has no default.
var ErrNoModel = errors.New("mind: no model")

// BadAdapterError is returned when the server refuses an adapter on first
// use: it does not fit the base model.
type BadAdapterError struct {
	Persona string
	Adapter string
	Err     error
}

func (e *BadAdapterError) Error() string {
	return fmt.Sprintf("mind: persona %s: adapter %s does not work with its base model: %v", e.Persona, e.Adapter, e.Err)
}

func (e *BadAdapterError) Unwrap() error { return e.Err }

// AdapterNotServedError is returned on llama-server when the server was
// not started with the persona's adapter: it cannot load one at run time.
type AdapterNotServedError struct {
	Persona string
	Path    string // where batos wrote the adapter for the server
}

func (e *AdapterNotServedError) Error() string {
	return fmt.Sprintf("mind: persona %s: llama-server was started without its adapter; restart it with --lora %s --lora-init-without-apply (adapters cannot be added while it runs)", e.Persona, e.Path)
}

// Manager is the memory manager: it moves personas' adapters between
// tiers on one server. It is safe for concurrent use.
type Manager struct {
	db       *image.DB
	server   *Server
	cacheDir string

	mu       sync.Mutex
	ready    map[string]string      // server-side names known to work → what each was built from
	building map[string]*sync.Mutex // one preparation per name at a time
	digests  map[fileStamp]string   // sha256 of local adapter files, by path, size and time
}

// fileStamp identifies a version of a local file, so that its digest is
// computed once rather than on every request.
type fileStamp struct {
	path string
	size int64
	mod  time.Time
}

// NewManager returns a memory manager for server. cacheDir is where
// adapters are written for servers that read files (llama-server, vLLM).
func NewManager(db *image.DB, server *Server, cacheDir string) *Manager {
	return &Manager{db: db, server: server, cacheDir: cacheDir, ready: map[string]string{}, building: map[string]*sync.Mutex{}, digests: map[fileStamp]string{}}
}

// adapterModel is the name of the model that serves a persona's adapter
// (an Ollama model, a vLLM adapter): batos-<persona>-<digest prefix>.
func adapterModel(p *Persona) string {
	return "batos-" + strings.ToLower(p.Name) + "-" + p.Adapter.Digest.Hex()[:12]
}

// weightsModel is the name of the Ollama model batos creates from pLLM's
// weights.
func weightsModel(b *Weights) string { return "batos-base-" + b.Blob.Digest.Hex()[:12] }

// lock serialises preparation of one server-side name.
func (m *Manager) lock(name string) func() {
	m.mu.Lock()
	l, ok := m.building[name]
	if !ok {
		l = &sync.Mutex{}
		m.building[name] = l
	}
	m.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// isReady reports whether name was prepared from source (for an Ollama
// adapter model, its base: a persona's model can change while its
// adapter stays).
func (m *Manager) isReady(name, source string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	got, ok := m.ready[name]
	return ok && got == source
}

func (m *Manager) setReady(name, source string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ready[name] = source
}

// Forget drops what the manager knows of the server-side model name, so
// that the next Prepare brings it back, and reports whether it had
// prepared it. Mind.Ask calls it when the server answers that it has no
// such model: it restarted (vLLM forgets adapters loaded at run time) or
// someone deleted the model.
func (m *Manager) Forget(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.ready[name]
	delete(m.ready, name)
	return ok
}

// Prepare brings p's adapter to the hot tier and returns how to call it.
func (m *Manager) Prepare(ctx context.Context, p *Persona) (Route, error) {
	switch m.server.API {
	case APIOllama:
		return m.prepareOllama(ctx, p)
	case APILlamaServer:
		return m.prepareLlamaServer(ctx, p)
	case APIVLLM:
		return m.prepareVLLM(ctx, p)
	}
	model := m.modelFor(p)
	if model == "" {
		return Route{}, m.noModel(p)
	}
	if p.HasAdapter() {
		return Route{}, fmt.Errorf("%w: persona %s has an adapter, and this OpenAI-compatible server has no way to load one (use Ollama, llama-server or vLLM)", llm.ErrUnsupported, p.Name)
	}
	return Route{Model: model}, nil
}

func (m *Manager) modelFor(p *Persona) string {
	if p.Model != "" {
		return p.Model
	}
	return m.server.DefaultModel
}

func (m *Manager) noModel(p *Persona) error {
	// What to do is said without naming batos's commands: a client of
	// the bridge reads this too (the CLI adds the commands).
	if offered := m.server.Offered; len(offered) > 0 {
		return fmt.Errorf("%w for persona %s: the server serves %d models (%s) and none was chosen: give the persona one of them as its model, or the server a default model",
			ErrNoModel, p.Name, len(offered), strings.Join(offered, ", "))
	}
	return fmt.Errorf("%w for persona %s: give the persona a model, give the server a default model, or import base weights into the image", ErrNoModel, p.Name)
}

// modelProblem is what a tier report says of a persona on an
// OpenAI-compatible server that names no model, or "".
func (m *Manager) modelProblem(p *Persona) string {
	if m.modelFor(p) != "" {
		return ""
	}
	return m.noModel(p).Error()
}

// Observe reports each persona's tier without changing anything.
func (m *Manager) Observe(ctx context.Context, personas []*Persona) ([]Placement, error) {
	switch m.server.API {
	case APIOllama:
		return m.observeOllama(ctx, personas)
	case APILlamaServer:
		return m.observeLlamaServer(ctx, personas)
	case APIVLLM:
		return m.observeVLLM(ctx, personas)
	}
	var out []Placement
	for _, p := range personas {
		pl := Placement{Persona: p.Name, Where: m.modelFor(p), Problem: m.modelProblem(p)}
		if p.HasAdapter() {
			pl.Tier, pl.Problem = TierCold, "this server cannot load adapters"
		}
		out = append(out, pl)
	}
	return out, nil
}

// --- Ollama: one model per adapter ---

func (m *Manager) ollamaBase(ctx context.Context, p *Persona) (string, error) {
	if model := m.modelFor(p); model != "" {
		return model, nil
	}
	base, err := LoadWeights(ctx, m.db)
	if err != nil {
		return "", err
	}
	if base == nil {
		return "", m.noModel(p)
	}
	name := weightsModel(base)
	unlock := m.lock(name)
	defer unlock()
	if m.isReady(name, "") {
		return name, nil
	}
	creator, err := capability[llm.ModelCreator](m.server, "create models")
	if err != nil {
		return "", err
	}
	if err := m.pushBlob(ctx, base.Blob); err != nil {
		return "", err
	}
	file := base.File
	if file == "" {
		file = "model.gguf"
	}
	if err := creator.Create(ctx, &llm.CreateRequest{Model: name, Files: map[string]string{file: base.Blob.Digest.String()}}); err != nil {
		return "", fmt.Errorf("create %s from the base model: %w", name, err)
	}
	m.setReady(name, "")
	return name, nil
}

func (m *Manager) pushBlob(ctx context.Context, b image.BlobRef) error {
	c, err := capability[llm.BlobStore](m.server, "store blobs")
	if err != nil {
		return err
	}
	have, err := c.HasBlob(ctx, b.Digest.Hex())
	if err != nil || have {
		return err
	}
	open := func() (io.ReadCloser, error) { return m.db.Store().OpenBlob(ctx, b.Digest) }
	if err := c.PushBlob(ctx, b.Digest.Hex(), open, b.Size); err != nil {
		return fmt.Errorf("push blob %s: %w", b.Digest, err)
	}
	return nil
}

func (m *Manager) prepareOllama(ctx context.Context, p *Persona) (Route, error) {
	from, err := m.ollamaBase(ctx, p)
	if err != nil {
		return Route{}, err
	}
	if !p.HasAdapter() {
		return Route{Model: from}, nil
	}
	if err := needGGUF(p, "Ollama"); err != nil {
		return Route{}, err
	}
	name := adapterModel(p)
	unlock := m.lock(name)
	defer unlock()
	route := Route{Model: name, Adapter: p.Adapter.Digest.String()}
	if m.isReady(name, from) {
		return route, nil
	}
	creator, err := capability[llm.ModelCreator](m.server, "create models")
	if err != nil {
		return Route{}, err
	}
	if err := m.pushBlob(ctx, p.Adapter); err != nil {
		return Route{}, err
	}
	file := p.AdapterFile
	if file == "" {
		file = "adapter.gguf"
	}
	err = creator.Create(ctx, &llm.CreateRequest{Model: name, From: from, Adapters: map[string]string{file: p.Adapter.Digest.String()}})
	if errors.Is(err, llm.ErrModelNotFound) {
		m.Forget(from) // a base batos created and someone deleted: create it again next time
	}
	if err != nil {
		return Route{}, fmt.Errorf("create %s from %s and persona %s's adapter: %w", name, from, p.Name, err)
	}
	// Ollama accepts any adapter at create time and fails on first use:
	// a one-token call now tells a bad adapter from a good one.
	one := 1
	start := time.Now()
	resp, err := m.server.Client.Chat(ctx, &llm.ChatRequest{Model: name, Messages: []llm.Message{{Role: llm.RoleUser, Content: "Say OK."}}, Options: llm.Options{MaxTokens: one}})
	m.recordWarmUp(ctx, p, name, start, resp, err)
	var api *llm.APIError
	if errors.As(err, &api) && api.Status == http.StatusInternalServerError {
		// Leave no broken model behind for the next try to trip over.
		_ = creator.Delete(context.WithoutCancel(ctx), name)
		return Route{}, &BadAdapterError{Persona: p.Name, Adapter: p.Adapter.Digest.String(), Err: err}
	}
	if err != nil {
		return Route{}, fmt.Errorf("warm up %s: %w", name, err)
	}
	m.setReady(name, from)
	return route, nil
}

// recordWarmUp records a warm-up call that succeeded in the persona's
// usage, as every call the mind makes is: it costs the server a model
// load and a token. One that failed is the failure of the call that
// needed it, which records it (Ask) or reports it (persona warm). A
// failure to record is not the warm-up's failure.
func (m *Manager) recordWarmUp(ctx context.Context, p *Persona, model string, start time.Time, resp *llm.ChatResponse, err error) {
	if err != nil || resp == nil {
		return
	}
	call := Call{Persona: p.Name, Model: model, Adapter: p.Adapter.Digest.String(), Latency: time.Since(start), Outcome: "ok", At: start,
		PromptTokens: resp.Usage.PromptTokens, CompletionTokens: resp.Usage.CompletionTokens}
	_ = Record(context.WithoutCancel(ctx), m.db, call)
}

func (m *Manager) observeOllama(ctx context.Context, personas []*Persona) ([]Placement, error) {
	lister, err := capability[llm.Lister](m.server, "list models")
	if err != nil {
		return nil, err
	}
	loadedLister, err := capability[llm.LoadedLister](m.server, "list loaded models")
	if err != nil {
		return nil, err
	}
	models, err := lister.Models(ctx)
	if err != nil {
		return nil, err
	}
	running, err := loadedLister.Loaded(ctx)
	if err != nil {
		return nil, err
	}
	present, loaded := map[string]bool{}, map[string]bool{}
	for _, md := range models {
		present[md.ID], present[strings.TrimSuffix(md.ID, ":latest")] = true, true
	}
	for _, name := range running {
		loaded[name], loaded[strings.TrimSuffix(name, ":latest")] = true, true
	}
	base, err := LoadWeights(ctx, m.db)
	if err != nil {
		return nil, err
	}
	var out []Placement
	for _, p := range personas {
		pl := Placement{Persona: p.Name, Where: m.modelFor(p)}
		switch {
		case pl.Where == "" && base != nil:
			pl.Where = weightsModel(base) // batos creates it from the image's blob
		case pl.Where == "":
			pl.Problem = m.noModel(p).Error()
		case !present[pl.Where]:
			pl.Problem = fmt.Sprintf("model %s is not on the server (ollama pull %s)", pl.Where, pl.Where)
		}
		if !p.HasAdapter() {
			out = append(out, pl)
			continue
		}
		pl.Where = adapterModel(p)
		switch {
		case pl.Problem != "":
			pl.Tier = TierCold
		case p.AdapterFormat != FormatGGUF:
			pl.Tier, pl.Problem = TierCold, formatProblem(p, "Ollama", FormatGGUF)
		case loaded[pl.Where]:
			pl.Tier = TierHot
		case present[pl.Where]:
			pl.Tier = TierWarm
		default:
			pl.Tier = TierCold
		}
		out = append(out, pl)
	}
	return out, nil
}

// formatProblem says, for a tier report, that p's adapter is of a format
// server cannot load, or returns "".
func formatProblem(p *Persona, server, want string) string {
	if p.AdapterFormat == want {
		return ""
	}
	return fmt.Sprintf("%s loads %s adapters and this one is %s", server, want, p.AdapterFormat)
}

// --- llama-server: adapters fixed at start, selected per request ---

func (m *Manager) loraID(ctx context.Context, p *Persona) (int, bool, error) {
	lister, err := capability[llm.AdapterLister](m.server, "list adapters")
	if err != nil {
		return 0, false, err
	}
	adapters, err := lister.LoRAAdapters(ctx)
	if err != nil {
		return 0, false, err
	}
	hexd := p.Adapter.Digest.Hex()
	for _, a := range adapters {
		// A file batos materialised is named by its digest; any other is
		// hashed, when it is on this machine.
		if strings.Contains(filepath.Base(a.Path), hexd[:12]) || m.fileDigest(a.Path) == hexd {
			return a.ID, true, nil
		}
	}
	return 0, false, nil
}

// fileDigest hashes a local regular file, or returns "" if it is not one
// (the server may run elsewhere, and its answer may name anything, even
// /dev/zero). Digests are kept by path, size and modification time: a
// llama-server persona is matched on every request.
func (m *Manager) fileDigest(path string) string {
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() {
		return ""
	}
	key := fileStamp{path, st.Size(), st.ModTime()}
	m.mu.Lock()
	d, ok := m.digests[key]
	m.mu.Unlock()
	if ok {
		return d
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, st.Size())); err != nil {
		return ""
	}
	d = hex.EncodeToString(h.Sum(nil))
	m.mu.Lock()
	m.digests[key] = d
	m.mu.Unlock()
	return d
}

func (m *Manager) prepareLlamaServer(ctx context.Context, p *Persona) (Route, error) {
	// An empty list, not none: without a "lora" field llama-server applies
	// its global scales, and an adapter loaded without
	// --lora-init-without-apply (or scaled by POST /lora-adapters) would
	// speak for a persona that has none.
	route := Route{Model: m.modelFor(p), LoRA: []llm.LoRA{}}
	if route.Model == "" && len(m.server.Offered) > 0 {
		return Route{}, m.noModel(p)
	}
	if !p.HasAdapter() {
		return route, nil
	}
	if err := needGGUF(p, "llama-server"); err != nil {
		return Route{}, err
	}
	id, ok, err := m.loraID(ctx, p)
	if err != nil {
		return Route{}, err
	}
	if !ok {
		path, err := m.materialiseFile(ctx, p)
		if err != nil {
			return Route{}, err
		}
		return Route{}, &AdapterNotServedError{Persona: p.Name, Path: path}
	}
	route.LoRA = []llm.LoRA{{ID: id, Scale: 1}}
	route.Adapter = p.Adapter.Digest.String()
	return route, nil
}

func (m *Manager) observeLlamaServer(ctx context.Context, personas []*Persona) ([]Placement, error) {
	var out []Placement
	for _, p := range personas {
		pl := Placement{Persona: p.Name, Where: m.modelFor(p)}
		if pl.Where == "" && len(m.server.Offered) > 0 {
			pl.Problem = m.noModel(p).Error()
		}
		if p.HasAdapter() && p.AdapterFormat != FormatGGUF {
			pl.Tier, pl.Problem = TierCold, formatProblem(p, "llama-server", FormatGGUF)
		} else if p.HasAdapter() {
			id, ok, err := m.loraID(ctx, p)
			if err != nil {
				return nil, err
			}
			if ok {
				pl.Tier, pl.Where = TierHot, fmt.Sprintf("lora id %d", id)
			} else {
				pl.Tier, pl.Problem = TierCold, "llama-server was not started with this adapter"
			}
		}
		out = append(out, pl)
	}
	return out, nil
}

// materialiseFile writes p's adapter blob to the cache directory as
// <digest>.gguf (verified, then renamed into place) and returns its path.
func (m *Manager) materialiseFile(ctx context.Context, p *Persona) (string, error) {
	if m.cacheDir == "" {
		return "", errors.New("mind: no cache directory for adapters")
	}
	dir := filepath.Join(m.cacheDir, "adapters")
	path := filepath.Join(dir, p.Adapter.Digest.Hex()+".gguf")
	if m.fileDigest(path) == p.Adapter.Digest.Hex() {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	rc, err := m.db.Store().OpenBlob(ctx, p.Adapter.Digest)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, rc); err != nil { // OpenBlob's reader fails on a digest mismatch
		tmp.Close()
		return "", fmt.Errorf("write adapter %s: %w", p.Adapter.Digest, err)
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return path, os.Rename(tmp.Name(), path)
}

// --- vLLM: adapters loaded by name at run time ---

func (m *Manager) prepareVLLM(ctx context.Context, p *Persona) (Route, error) {
	if !p.HasAdapter() {
		if m.modelFor(p) == "" {
			return Route{}, m.noModel(p)
		}
		return Route{Model: m.modelFor(p)}, nil
	}
	name := adapterModel(p)
	unlock := m.lock(name)
	defer unlock()
	route := Route{Model: name, Adapter: p.Adapter.Digest.String()}
	if m.isReady(name, "") {
		return route, nil
	}
	if loaded, err := m.vllmLoaded(ctx); err != nil {
		return Route{}, err
	} else if loaded[name] {
		m.setReady(name, "")
		return route, nil
	}
	loader, err := capability[llm.AdapterLoader](m.server, "load adapters")
	if err != nil {
		return Route{}, err
	}
	dir, err := m.materialiseDir(ctx, p)
	if err != nil {
		return Route{}, err
	}
	if err := loader.LoadLoRA(ctx, name, dir); err != nil {
		// A load whose answer was lost leaves the adapter loaded: check.
		if loaded, lerr := m.vllmLoaded(ctx); lerr == nil && loaded[name] {
			m.setReady(name, "")
			return route, nil
		}
		return Route{}, fmt.Errorf("load persona %s's adapter into vLLM: %w", p.Name, err)
	}
	m.setReady(name, "")
	return route, nil
}

func (m *Manager) vllmLoaded(ctx context.Context) (map[string]bool, error) {
	lister, err := capability[llm.Lister](m.server, "list models")
	if err != nil {
		return nil, err
	}
	models, err := lister.Models(ctx)
	if err != nil {
		return nil, err
	}
	loaded := map[string]bool{}
	for _, md := range models {
		loaded[md.ID] = true
	}
	return loaded, nil
}

func (m *Manager) observeVLLM(ctx context.Context, personas []*Persona) ([]Placement, error) {
	loaded, err := m.vllmLoaded(ctx)
	if err != nil {
		return nil, err
	}
	var out []Placement
	for _, p := range personas {
		pl := Placement{Persona: p.Name, Where: m.modelFor(p), Problem: m.modelProblem(p)}
		if p.HasAdapter() {
			pl.Where, pl.Problem = adapterModel(p), ""
			switch {
			case loaded[pl.Where]:
				pl.Tier = TierHot
			case p.AdapterFormat != FormatPEFT:
				pl.Tier, pl.Problem = TierCold, formatProblem(p, "vLLM", FormatPEFT)
			case m.cacheDir != "" && dirExists(m.peftDir(p)):
				pl.Tier = TierWarm
			default:
				pl.Tier = TierCold
			}
		}
		out = append(out, pl)
	}
	return out, nil
}

func dirExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

func needGGUF(p *Persona, server string) error {
	if p.AdapterFormat == FormatGGUF {
		return nil
	}
	return fmt.Errorf("%w: %s loads GGUF adapters, and persona %s's adapter is %s: set one with batos persona set %s -adapter FILE.gguf", llm.ErrUnsupported, server, p.Name, p.AdapterFormat, p.Name)
}
