package zmqbridge_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/tinylib/msgp/msgp"

	"batos/internal/gguf/gguftest"
	"batos/internal/llm/llmtest"
	"batos/internal/mind"
	"batos/internal/uvm"
	"batos/internal/zmqbridge"
)

// This file runs docs/protocol.md: every request and reply shown there
// is an example this test sends, in document order, to one real server
// over a fresh image, through a DEALER socket with msgpack written and
// read by the msgpack library (not the bridge's own codec), and the
// replies must match what the doc shows. The format of the examples is
// described in the doc ("Messages"); docexamples_parse_test.go reads
// them and docexamples_match_test.go holds replies against them.

// docPath is the protocol document, relative to this package.
const docPath = "../../docs/protocol.md"

// exampledCommands are the commands docs/protocol.md shows examples of:
// a command's last example cannot go unnoticed. Add to it as examples
// are added.
var exampledCommands = []string{
	"ping", "send", "eval", "cancel", "inspect", "history", "log", "undo", "pack", "stats", "verify",
	"method_set", "method_revert", "cycle_list", "model_import", "persona_set", "persona_warm", "persona_show",
	"catalog_add", "catalog_search", "catalog_show", "catalog_remove", "method_stats",
}

// TestProtocolDocExamples runs every example of docs/protocol.md against
// a real server, in document order, on one fresh image.
func TestProtocolDocExamples(t *testing.T) {
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	exchanges, err := parseDocExamples(string(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(exchanges) < 10 {
		t.Fatalf("found %d examples in %s, want the doc's examples", len(exchanges), docPath)
	}
	shown := map[string]bool{}
	for _, ex := range exchanges {
		if err := ex.check(); err != nil {
			t.Fatal(err)
		}
		for _, r := range ex.requests {
			shown[fmt.Sprint(r.value["command"])] = true
		}
	}
	for _, c := range exampledCommands {
		if !shown[c] {
			t.Errorf("%s shows no example of %s any more", docPath, c)
		}
	}
	fx := newDocFixtures(t)
	addr := serveDocImage(t, fx)
	d := dealer(t, addr)
	// Bounds a reply that never comes, not how fast one must: a loaded
	// machine running every package's tests at once is slow.
	d.SetRcvtimeo(time.Minute)
	m := &docMatcher{bindings: map[string]string{}, rewrite: fx.rewrite}
	for _, ex := range exchanges {
		runExchange(t, d, m, ex)
	}
}

// runExchange sends the requests of ex at once and matches each reply
// with the doc's reply of the same id.
func runExchange(t *testing.T, d *zmq.Socket, m *docMatcher, ex exchange) {
	t.Helper()
	for _, r := range ex.requests {
		b, err := msgp.AppendIntf(nil, m.request(r.value))
		if err != nil {
			t.Fatalf("docs/protocol.md:%d: %v", r.line, err)
		}
		if _, err := d.SendBytes(b, 0); err != nil {
			t.Fatalf("docs/protocol.md:%d: send: %v", r.line, err)
		}
	}
	for range ex.requests {
		frames, err := d.RecvMessageBytes(0)
		if err != nil {
			t.Fatalf("docs/protocol.md:%d: no reply: %v", ex.requests[0].line, err)
		}
		got, rest, err := msgp.ReadIntfBytes(frames[len(frames)-1])
		if err != nil || len(rest) > 0 {
			t.Fatalf("docs/protocol.md:%d: undecodable reply (%d bytes left): %v", ex.requests[0].line, len(rest), err)
		}
		got = readWireValue(got)
		request, want, ok := ex.pairFor(m, got)
		if !ok {
			t.Errorf("docs/protocol.md:%d: a reply to no request of this example: %s", ex.requests[0].line, renderWire(got))
			continue
		}
		if diffs := m.match("reply", want.value, got); len(diffs) > 0 {
			t.Errorf("docs/protocol.md:%d: the reply to\n%s\ndiffers from the doc's:\n  %s\nwant (line %d):\n%s\ngot:\n%s",
				request.line, request.text, strings.Join(diffs, "\n  "), want.line, want.text, renderWire(got))
		}
	}
}

// pairFor finds the doc's request and reply with got's id.
func (ex exchange) pairFor(m *docMatcher, got any) (request, reply docObject, ok bool) {
	g, _ := got.(map[string]any)
	for _, r := range ex.replies {
		if len(m.match("id", r.value["id"], g["id"])) > 0 {
			continue
		}
		for _, q := range ex.requests {
			if len(m.match("id", q.value["id"], g["id"])) == 0 {
				return q, r, true
			}
		}
	}
	return docObject{}, docObject{}, false
}

// docFixtures are what the examples assume the server's machine holds:
// the files under /srv they name (the test maps /srv to a temporary
// directory) and an Ollama at its default URL (a scripted fake, reporting
// the version the doc shows).
type docFixtures struct {
	srv    string // stands for /srv
	ollama *llmtest.Ollama
}

func newDocFixtures(t *testing.T) *docFixtures {
	t.Helper()
	dir := t.TempDir()
	fx := &docFixtures{srv: filepath.Join(dir, "srv")}
	files := map[string][]byte{
		"models/tiny.gguf":    gguftest.TinyLlama(31),
		"adapters/brick.gguf": gguftest.TinyLoRA(31),
		"docs/rivers.txt":     []byte(riversText),
		"docs/blob.bin":       {0, 1, 2, 3, 0, 0xff, 0xfe, 0, 7},
	}
	for name, content := range files {
		p := filepath.Join(fx.srv, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fx.ollama = llmtest.NewOllama(t, &llmtest.OllamaOptions{
		Responder: &llmtest.Model{Respond: echoMind}, Models: []string{"tiny"}, AdapterFits: llmtest.GGUFFits,
	})
	return fx
}

// riversText is /srv/docs/rivers.txt.
const riversText = `The Nile is the longest river in Africa. It flows north through eleven countries
before it reaches the Mediterranean Sea at Alexandria. For most of its course it crosses
desert, and the farms of Egypt have always lived on the narrow green band along its banks.

The Amazon carries more water than any other: about a fifth of all the fresh water that
flows into the oceans. Its basin covers much of South America, and in the wet season the
forest along it floods for hundreds of kilometres.

The Yangtze is the longest in Asia. It rises on the Tibetan Plateau and runs east to
Shanghai, and the Three Gorges Dam across it is the largest power station in the world.

The Mississippi drains most of the United States between the Rockies and the Appalachians.
Its delta grows into the Gulf of Mexico with the silt it brings down, and the port of New
Orleans stands near its mouth.

The Danube flows through ten countries, more than any other in Europe, from the Black Forest
to the Black Sea. Vienna, Bratislava, Budapest and Belgrade all stand on its banks.

The Volga is the longest in Europe. It rises in the hills north-west of Moscow and ends in
the Caspian Sea, which has no outlet to the ocean.

The Ganges is sacred to Hindus, and millions bathe in it at Varanasi. With the Brahmaputra it
forms the largest delta on Earth, where the mangroves of the Sundarbans grow.

The Murray is the longest in Australia. Its water is shared by farms in three states, and in
years of drought its mouth has had to be kept open by dredging.
`

// rewrite maps a doc string to the test's machine: paths under /srv (in
// a message too) to the fixture directory, Ollama's default URL to the
// fake's.
func (fx *docFixtures) rewrite(s string) string {
	if s == "/srv" {
		return fx.srv
	}
	s = strings.ReplaceAll(s, "/srv/", fx.srv+string(filepath.Separator))
	return strings.ReplaceAll(s, "http://127.0.0.1:11434", fx.ollama.URL)
}

// serveDocImage serves a fresh image with the fake Ollama as its mind,
// and returns the request endpoint.
func serveDocImage(t *testing.T, fx *docFixtures) string {
	t.Helper()
	// A telemetry flush is a commit no example shows: one between the
	// examples would change what pack and verify count.
	flush := uvm.TelemetryFlush
	uvm.TelemetryFlush = time.Hour
	t.Cleanup(func() { uvm.TelemetryFlush = flush })
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	served := make(chan error, 1)
	dir := t.TempDir()
	cfg := mind.ServerConfig{URL: fx.ollama.URL, API: mind.APIOllama, Model: "tiny"}
	go func() {
		served <- uvm.Serve(ctx, filepath.Join(dir, "live_image.db"), &uvm.ServeOptions{
			// batos run records the user who started it in the log.
			UVM:    uvm.Options{User: "alice"},
			Bridge: zmqbridge.Options{RequestAddr: "tcp://127.0.0.1:*", EventAddr: "tcp://127.0.0.1:*"},
			FindMind: func(ctx context.Context, u *uvm.UVM) (*mind.Server, error) {
				server, err := mind.Connect(ctx, cfg)
				if err != nil {
					return nil, err
				}
				return server, mind.SaveServerConfig(ctx, u.DB(), cfg)
			},
			MindOptions: &mind.Options{CacheDir: filepath.Join(dir, "cache")},
			Ready:       func(_ *uvm.UVM, requests, _, _ string) { ready <- requests },
			Logger:      slog.New(slog.NewTextHandler(t.Output(), nil)),
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case addr := <-ready:
		return addr
	case err := <-served:
		t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the bridge never served")
	}
	return ""
}
