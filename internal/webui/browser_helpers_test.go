package webui_test

// The browser tests' machinery: one headless Chromium for the package
// (started on first use, stopped after the last test), a whole batos
// stack per test (uvm.Serve: image, bridge, HTTP API and this UI, with a
// scripted mind), a fresh tab in a browser context of its own per test,
// and a screenshot of the page when a test fails.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"batos/internal/command"
	"batos/internal/httpapi"
	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/mind"
	"batos/internal/uvm"
	"batos/internal/webui"
	"batos/internal/zmqbridge"
)

// testTimeout bounds each browser test's waits, so that a broken UI fails
// rather than hangs.
const testTimeout = 20 * time.Second

// replyDelay is how long the scripted mind takes over each answer, so
// that a cycle's states stay long enough to be seen moving.
const replyDelay = 400 * time.Millisecond

var browser struct {
	once   sync.Once
	ctx    context.Context // the browser's; tabs are made from it
	cancel context.CancelFunc
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if browser.cancel != nil {
		browser.cancel()
	}
	os.Exit(code)
}

// chromium finds the browser: /usr/bin/chromium (Debian's), else one on
// PATH.
func chromium() (string, error) {
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium", nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("chromium not found: install it with apt-get install chromium (make test does)")
}

// startBrowser starts the package's browser once; every test fails
// (never skips) when there is none.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	browser.once.Do(func() {
		path, err := chromium()
		if err != nil {
			browser.err = err
			return
		}
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path),
			chromedp.NoSandbox, // the tests run as root in CI
			chromedp.Flag("disable-dev-shm-usage", true),
			chromedp.WindowSize(1280, 900),
		)
		actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		bctx, cancelBrowser := chromedp.NewContext(actx)
		browser.cancel = func() { cancelBrowser(); cancelAlloc() }
		// The first Run starts the browser, bound to bctx (no timeout).
		if err := chromedp.Do(bctx); err != nil {
			browser.err = fmt.Errorf("starting %s: %w", path, err)
			return
		}
		browser.ctx = bctx
	})
	if browser.err != nil {
		t.Fatal(browser.err)
	}
	return browser.ctx
}

// stack is a running batos: its image, its HTTP address and a service
// over the same image for setting things up behind the UI's back.
type stack struct {
	u    *uvm.UVM
	base string // http://127.0.0.1:PORT
	svc  *command.Local
	mind *mind.Server
	ctx  context.Context // Serve's
}

// enableMind gives a stack started without one its mind, as Serve does
// when the inference server answers late.
func (s *stack) enableMind(t *testing.T) {
	t.Helper()
	if err := s.u.EnableMind(s.ctx, s.mind, nil, nil); err != nil {
		t.Fatalf("enabling the mind: %v", err)
	}
}

var methodFor = regexp.MustCompile(`(?:Plan the method|Write the method) (\w+)`)

// learner is the scripted mind: BRICK plans any selector as a method
// answering its own name, ROBIN writes it, anyone else says "ok"; each
// answer takes replyDelay.
func learner(ctx context.Context, req *llm.ChatRequest) (llmtest.Reply, error) {
	sel := "x"
	if m := methodFor.FindStringSubmatch(req.Messages[len(req.Messages)-1].Content); m != nil {
		sel = m[1]
	}
	var out any
	switch llmtest.Persona(req) {
	case "BRICK":
		out = map[string]any{"intent": "name it", "selector": sel, "signature": "def " + sel + "(self, *args)", "sub_questions": []any{},
			"tests": []any{map[string]any{"name": "named", "expr": "self." + sel + "() == '" + sel + "'"}}}
	case "ROBIN":
		out = map[string]any{"source": "def " + sel + "(self, *args):\n    return '" + sel + "'\n", "tests": []any{}}
	default:
		return llmtest.Reply{Text: "ok", Delay: replyDelay}, nil
	}
	b, _ := json.Marshal(out)
	return llmtest.Reply{Text: string(b), Delay: replyDelay}, nil
}

// startStack serves a new image on free ports with the UI mounted, until
// the test ends; withMind gives it the scripted mind from the start,
// else it has none until enableMind.
func startStack(t *testing.T, withMind bool) *stack {
	t.Helper()
	server := &mind.Server{API: mind.APIOpenAI, DefaultModel: "scripted", Client: &llmtest.Model{Respond: learner}}
	var findMind func(context.Context, *uvm.UVM) (*mind.Server, error)
	if withMind {
		findMind = func(context.Context, *uvm.UVM) (*mind.Server, error) { return server, nil }
	}
	ctx, cancel := context.WithCancel(context.Background())
	type ready struct {
		u    *uvm.UVM
		addr string
	}
	readyc := make(chan ready, 1)
	done := make(chan error, 1)
	path := filepath.Join(t.TempDir(), "live_image.db")
	go func() {
		done <- uvm.Serve(ctx, path, &uvm.ServeOptions{
			UVM:           uvm.Options{User: "tester"},
			Bridge:        zmqbridge.Options{RequestAddr: "tcp://127.0.0.1:*", EventAddr: "tcp://127.0.0.1:*"},
			HTTP:          &httpapi.Options{Addr: "127.0.0.1:0", Mount: webui.Mount},
			FindMind:      findMind,
			Ready:         func(u *uvm.UVM, _, _, http string) { readyc <- ready{u, http} },
			ShutdownGrace: 2 * time.Second,
			Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
	}()
	var r ready
	select {
	case r = <-readyc:
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	case <-time.After(testTimeout):
		cancel()
		t.Fatal("serve: not ready in time")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("serve: did not return after its context ended")
		}
	})
	return &stack{u: r.u, base: "http://" + r.addr, svc: command.NewLocal(r.u, "tester"), mind: server, ctx: ctx}
}

// page is one tab on a stack.
type page struct {
	t   *testing.T
	s   *stack
	tab context.Context // the tab's, without a deadline (for the failure screenshot)
	ctx context.Context // the tab's with the test's deadline
}

// openPage opens a tab in a browser context of its own (its own cookies)
// at the app's route (a hash such as "#/object/genesis"), and waits for
// the app's event stream to be open.
func openPage(t *testing.T, s *stack, route string) *page {
	t.Helper()
	tab, cancelTab := chromedp.NewContext(startBrowser(t), chromedp.WithNewBrowserContext())
	t.Cleanup(cancelTab)
	if err := chromedp.Do(tab); err != nil { // opens the tab
		t.Fatalf("opening a tab: %v", err)
	}
	ctx, cancel := context.WithTimeout(tab, testTimeout)
	t.Cleanup(cancel)
	p := &page{t: t, s: s, tab: tab, ctx: ctx}
	t.Cleanup(p.screenshotOnFailure) // before the tab closes: cleanups run last first
	p.do(chromedp.Navigate(s.base + "/" + route))
	p.waitFor(`document.querySelector('#events-state')?.dataset.state === 'open'`)
	return p
}

// do runs actions, failing the test on an error.
func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.t.Fatalf("%v (page: %s)", err, p.mainText())
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v (page: %s)", expr, err, p.mainText())
	}
	return v
}

// waitFor polls the JavaScript expression every 50 ms until it is truthy.
func (p *page) waitFor(expr string) {
	p.t.Helper()
	_, err := chromedp.Run(p.ctx, chromedp.Poll[any](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(0)))
	if err != nil {
		p.t.Fatalf("waiting for %s: %v (page: %s)", expr, err, p.mainText())
	}
}

// route goes to a hash route within the loaded app.
func (p *page) route(hash string) {
	p.t.Helper()
	eval[any](p, fmt.Sprintf(`location.hash = %s`, jsString(hash)))
}

// text is the visible text of the first element sel matches (waiting for
// it).
func (p *page) text(sel string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("text of %s: %v (page: %s)", sel, err, p.mainText())
	}
	return s
}

// click clicks the first element sel matches once it is visible. The
// click is the element's own (element.click()), not a mouse event at its
// coordinates: a page that reloads a list above it (an event arriving)
// moves it, and a mouse click would land on whatever took its place.
func (p *page) click(sel string) {
	p.t.Helper()
	p.waitFor(fmt.Sprintf(`((e) => e && e.offsetParent !== null ? (e.click(), true) : false)(document.querySelector(%s))`, jsString(sel)))
}

// clickNow clicks the first element sel matches, in the page at once
// when there is one (polling until there is): no node can be replaced
// between finding it and clicking it, as a list read again can.
func (p *page) clickNow(sel string) {
	p.t.Helper()
	p.waitFor(fmt.Sprintf(`((e) => e ? (e.click(), true) : false)(document.querySelector(%s))`, jsString(sel)))
}

// setValue sets a textarea's value.
func (p *page) setValue(sel, value string) {
	p.t.Helper()
	p.do(chromedp.SetValue(chromedp.CSS(sel), value))
}

// acceptConfirms makes window.confirm say yes (undo and cycle cancel ask).
func (p *page) acceptConfirms() {
	p.t.Helper()
	eval[any](p, `window.confirm = () => true`)
}

// mainText is the page's main text, shortened, for failure messages; it
// has a deadline of its own (the test's may be what ran out).
func (p *page) mainText() string {
	ctx, cancel := context.WithTimeout(p.tab, 3*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.hash + ' | ' + (document.querySelector('#main')?.innerText ?? '')`))
	if err != nil {
		return "unreadable: " + err.Error()
	}
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return strings.Join(strings.Fields(s), " ")
}

// screenshot writes a full-page screenshot named name (outliner.png…)
// into $BATOS_SCREENSHOTS when that is set; off by default.
func (p *page) screenshot(name string) {
	p.t.Helper()
	dir := os.Getenv("BATOS_SCREENSHOTS")
	if dir == "" {
		return
	}
	if err := p.saveScreenshot(p.ctx, filepath.Join(dir, name)); err != nil {
		p.t.Errorf("screenshot %s: %v", name, err)
	}
}

func (p *page) saveScreenshot(ctx context.Context, path string) error {
	// Quality 100 is what makes chromedp capture a PNG (any other, a
	// JPEG), as the files' names say.
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, buf, 0o644)
}

// screenshotOnFailure saves the page of a failed test as TESTNAME.png in
// $BATOS_BROWSER_ARTIFACTS (default: batos-browser-failures in the
// temporary directory).
func (p *page) screenshotOnFailure() {
	if !p.t.Failed() {
		return
	}
	dir := os.Getenv("BATOS_BROWSER_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "batos-browser-failures")
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(p.t.Name()) + ".png"
	ctx, cancel := context.WithTimeout(p.tab, 10*time.Second)
	defer cancel()
	path := filepath.Join(dir, name)
	if err := p.saveScreenshot(ctx, path); err != nil {
		p.t.Logf("no screenshot of the failure: %v", err)
		return
	}
	p.t.Logf("screenshot of the failure: %s", path)
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// reload reads the page again.
func reload() chromedp.Action[chromedp.Void] { return chromedp.Reload() }

// sleep gives the page a moment (for an event handler that would fire).
func sleep() chromedp.Action[chromedp.Void] { return chromedp.Sleep(300 * time.Millisecond) }
