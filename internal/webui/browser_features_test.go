package webui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"batos/internal/command"
)

// A method a cycle installed shows its provenance in the outliner (the
// cycle, personas and tests, and what it replaced), and revert takes it
// out again; the evaluator links the cycle while it waits for it; the
// timeline shows the cycle's model calls under its transactions.
func TestBrowserProvenanceRevertAndTimelineSteps(t *testing.T) {
	s := startStack(t, true)
	p := openPage(t, s, "#/object/genesis")
	p.waitFor(`document.querySelector('#eval-code')`)
	p.setValue("#eval-code", "self.wave()")
	p.click("#print-it")
	// While it waits, the evaluator links the cycle learning wave.
	p.waitFor(`document.querySelector('#eval-result .waiting a.cycle-link')`)
	if got := p.text("#eval-result .waiting"); !strings.Contains(got, "learns wave") {
		t.Errorf("the waiting note: %q", got)
	}
	p.waitFor(`document.querySelector('#eval-result .eval-repr')?.textContent === '"wave"'`)
	p.waitFor(`document.querySelector('#outliner li.slot[data-name="wave"][data-kind="method"]')`)
	p.clickNow(`#outliner li.slot[data-name="wave"] details.provenance-block summary`)
	p.waitFor(`document.querySelector('#outliner li.slot[data-name="wave"] .provenance a.cycle-link')`)
	prov := p.text(`#outliner li.slot[data-name="wave"] .provenance`)
	for _, want := range []string{"cycle", "BRICK", "ROBIN", "self.wave() == 'wave'"} {
		if !strings.Contains(prov, want) {
			t.Errorf("the provenance of wave lacks %q: %q", want, prov)
		}
	}
	if got := p.text(`#outliner li.slot[data-name="wave"] details.provenance-block summary`); !strings.HasPrefix(got, "provenance: learned in cycle ") {
		t.Errorf("the provenance summary: %q", got)
	}
	p.clickNow(`#outliner li.slot[data-name="wave"] details.previous summary`)
	if got := p.text(`#outliner li.slot[data-name="wave"] details.previous`); !strings.Contains(got, "did not exist") {
		t.Errorf("what wave replaced: %q", got)
	}
	p.screenshot("provenance.png")

	// The provenance links the cycle: its page shows each test and its
	// outcome, and every step with its persona.
	p.clickNow(`#outliner li.slot[data-name="wave"] .provenance a.cycle-link`)
	p.waitFor(`/^#\/cycle\/[0-9]+$/.test(location.hash) && document.querySelector('#cycle table.tests tr.test')`)
	if got := p.text(`#cycle table.tests tr.test`); !strings.Contains(got, "self.wave() == 'wave'") || !strings.Contains(got, "passed") {
		t.Errorf("the cycle's test row: %q", got)
	}
	if n := eval[int](p, `document.querySelectorAll('#cycle ol.steps li.step').length`); n < 2 {
		t.Errorf("the cycle shows %d steps, want BRICK's plan and ROBIN's method", n)
	}

	// The timeline shows the cycle's model calls under its transactions.
	p.route("#/log")
	p.waitFor(`document.querySelectorAll('#log tr.tx-steps li.step-inline').length >= 2`)
	steps := p.text("#log tbody")
	for _, want := range []string{"BRICK", "ROBIN", "scripted", "tokens"} {
		if !strings.Contains(steps, want) {
			t.Errorf("the timeline's cycle steps lack %q", want)
		}
	}
	if n := eval[int](p, `document.querySelectorAll('#log tr.tx.tx-cycle').length`); n < 2 {
		t.Errorf("%d of the timeline's rows are marked as the cycle's, want its transactions", n)
	}
	p.screenshot("timeline-cycle.png")

	// Revert takes the learned method out (it replaced nothing).
	p.route("#/object/genesis")
	p.waitFor(`document.querySelector('#outliner li.slot[data-name="wave"]')`)
	p.acceptConfirms()
	p.clickNow(`#outliner li.slot[data-name="wave"] details.provenance-block summary`)
	p.clickNow(`#outliner li.slot[data-name="wave"] details.previous summary`)
	p.clickNow(`#outliner li.slot[data-name="wave"] button.revert`)
	p.waitFor(`document.querySelector('#outliner h1') && !document.querySelector('#outliner li.slot[data-name="wave"]')`)
	var has bool
	if res, err := s.svc.Eval(context.Background(), command.EvalRequest{Code: "has_slot(genesis, 'wave')"}); err != nil {
		t.Fatal(err)
	} else {
		has = res.Repr == "True"
	}
	if has {
		t.Error("genesis still has wave after the revert")
	}

	// The mind has nothing standing in its way.
	p.route("#/mind")
	p.waitFor(`document.querySelector('#doctor')`)
	if got := p.text("#doctor"); !strings.Contains(got, "Nothing stands in the way") {
		t.Errorf("doctor with a mind: %q", got)
	}
}

// The outliner adds a data slot and a method (refusing a bad one at its
// line), removes a slot, clones the object, labels references with the
// names of what they point to, and "inspect it" opens what an
// expression answers.
func TestBrowserOutlinerAddRemoveCloneInspect(t *testing.T) {
	s := startStack(t, false)
	p := openPage(t, s, "#/object/genesis")
	p.waitFor(`document.querySelector('#outliner #add-slot')`)
	// The parent slot's value reads as the object it points to.
	p.waitFor(`document.querySelector('#outliner li.slot[data-name="parent*"] a.ref')`)
	if got := p.text(`#outliner li.slot[data-name="parent*"] a.ref`); !strings.HasPrefix(got, "traits (oid:") {
		t.Errorf("the parent slot's reference reads %q, want traits (oid:N)", got)
	}

	// A form opened twice and cancelled leaves the page live: another
	// client's commit shows.
	p.click("#add-slot")
	p.click("#add-slot")
	p.click("#add-slot-form button.cancel")
	if _, err := s.svc.Eval(context.Background(), command.EvalRequest{Code: "genesis.elsewhere = 7"}); err != nil {
		t.Fatal(err)
	}
	p.waitFor(`document.querySelector('#outliner li.slot[data-name="elsewhere"]')`)

	p.click("#add-slot")
	p.setValue("#new-slot-name", "colour")
	p.setValue("#new-slot-value", "'blue'")
	p.click("#add-slot-form button.accept")
	p.waitFor(`document.querySelector('#outliner li.slot[data-name="colour"]')?.textContent.includes('"blue"')`)

	// A method with a syntax error is refused at its line.
	p.click("#add-slot")
	p.setValue("#new-slot-name", "twice")
	eval[any](p, `(() => { const k = document.querySelector('#new-slot-kind'); k.value = 'method'; k.dispatchEvent(new Event('change')); })()`)
	p.setValue("#new-slot-value", "def twice(self, x):\n    y = x\n    return y +* 2\n")
	p.click("#add-slot-form button.accept")
	p.waitFor(`document.querySelector('#add-slot-form div.error')`)
	if got := p.text("#add-slot-form .error-note"); !strings.Contains(got, "line 3") {
		t.Errorf("the refusal's note: %q, want line 3", got)
	}
	if n := eval[int](p, `Number(document.querySelector('#add-slot-form .numbered .error-line')?.dataset.line ?? 0)`); n != 3 {
		t.Errorf("the marked line is %d, want 3", n)
	}
	p.setValue("#new-slot-value", "def twice(self, x):\n    return x * 2\n")
	p.click("#add-slot-form button.accept")
	p.waitFor(`document.querySelector('#outliner li.slot[data-name="twice"][data-kind="method"]')`)

	// Remove the data slot (an undo would bring it back).
	p.acceptConfirms()
	p.clickNow(`#outliner li.slot[data-name="colour"] button.remove`)
	p.waitFor(`document.querySelector('#outliner li.slot[data-name="twice"]') && !document.querySelector('#outliner li.slot[data-name="colour"]')`)

	// Inspect it: a reference opens its outliner; another value opens up.
	p.setValue("#eval-code", "[1, 2, 3]")
	p.click("#inspect-it")
	p.waitFor(`document.querySelector('#eval-result .inspected ol.v-list')`)
	genesis := p.text("#outliner .object-oid")

	// Clone genesis into a slot of it: the clone's outliner opens.
	p.click("#clone")
	if got := eval[string](p, `document.querySelector('#clone-slot').value`); got != "genesis_clone" {
		t.Errorf("the clone's default slot: %q", got)
	}
	p.setValue("#clone-slot", "twice")
	p.click("#clone-form button.accept")
	p.waitFor(`document.querySelector('#clone-form div.error')?.textContent.includes('twice is taken')`)
	p.setValue("#clone-slot", "copy")
	p.click("#clone-form button.accept")
	p.waitFor(fmt.Sprintf(`/^#\/object\/oid:[0-9]+$/.test(location.hash) && location.hash !== %s && document.querySelector('#outliner li.slot[data-name="twice"]')`,
		jsString("#/object/"+genesis)))
	clone := p.text("#outliner .object-oid")
	if clone == genesis {
		t.Fatalf("the clone's outliner shows %s, genesis's OID", clone)
	}
	p.route("#/object/genesis")
	p.waitFor(`document.querySelector('#outliner li.slot[data-name="copy"] a.ref')`)
	p.setValue("#eval-code", "self.copy")
	p.click("#inspect-it")
	p.waitFor(fmt.Sprintf(`location.hash === %s`, jsString("#/object/"+clone)))
	p.screenshot("clone.png")

	// Without a mind, the doctor says so.
	p.route("#/mind")
	p.waitFor(`document.querySelector('#doctor')`)
	if got := p.text("#doctor"); !strings.Contains(got, "No inference server") {
		t.Errorf("doctor without a mind: %q", got)
	}
}

// An object's history shows what each revision changed, slot by slot
// (a method as a diff), and opens the object as a revision left it,
// read-only.
func TestBrowserHistoryDiffsAndAsOf(t *testing.T) {
	s := startStack(t, false)
	ctx := context.Background()
	for _, code := range []string{"genesis.counter = 1", "genesis.counter = 2\ngenesis.label = 'two'"} {
		if _, err := s.svc.Eval(ctx, command.EvalRequest{Code: code}); err != nil {
			t.Fatal(err)
		}
	}
	for _, src := range []string{"def greet(self):\n    return 'hello'\n", "def greet(self):\n    name = self.name\n    return 'hello, ' + name\n"} {
		if _, err := s.svc.SetMethod(ctx, command.MethodRequest{Target: "genesis", Name: "greet", Source: src}); err != nil {
			t.Fatal(err)
		}
	}
	p := openPage(t, s, "#/history/genesis")
	p.waitFor(`document.querySelectorAll('#history tr.revision').length === 5 && !document.querySelector('#history td.changes .loading')`)
	changes := eval[[]string](p, `[...document.querySelectorAll('#history tr.revision')].map((r) => r.querySelector('td.changes').innerText.replace(/\s+/g, ' ').trim())`)
	t.Logf("changes, newest first: %q", changes)
	want := []string{"~ greet (method)", "+ greet (method)", "~ counter 1 → 2", "+ counter = 1", "+ name"}
	for i, w := range want {
		if i >= len(changes) || !strings.HasPrefix(changes[i], w) {
			t.Errorf("revision %d shows %q, want it to begin %q", i, changes[i], w)
		}
	}
	if len(changes) > 2 && !strings.Contains(changes[2], "+ label = \"two\"") {
		t.Errorf("the second eval's revision lacks the label it added: %q", changes[2])
	}
	// The method's change is a diff: its old line out, its new ones in.
	p.clickNow(`#history tr.revision:first-child li.slot-change[data-name="greet"] details summary`)
	del := eval[[]string](p, `[...document.querySelectorAll('#history tr.revision:first-child .diff .diff-del')].map((e) => e.textContent.trim())`)
	add := eval[[]string](p, `[...document.querySelectorAll('#history tr.revision:first-child .diff .diff-add')].map((e) => e.textContent.trim())`)
	if len(del) != 1 || del[0] != "-     return 'hello'" || len(add) != 2 {
		t.Errorf("greet's diff: removed %q, added %q", del, add)
	}
	p.screenshot("history-diff.png")

	// The object as the first eval left it: counter 1, no greet, and
	// nothing to edit.
	p.clickNow(`#history tr.revision:nth-child(4) a.as-of`)
	p.waitFor(`/^#\/at\/[0-9a-f]{16}\/oid:[0-9]+$/.test(location.hash) && document.querySelector('#outliner.as-of li.slot[data-name="counter"]')`)
	if got := p.text(`#outliner li.slot[data-name="counter"] .slot-body`); got != "1" {
		t.Errorf("counter as of the first eval: %q", got)
	}
	if eval[bool](p, `!!document.querySelector('#outliner li.slot[data-name="greet"]') || !!document.querySelector('#outliner button.edit, #outliner button.remove, #add-slot, #evaluator')`) {
		t.Error("the object as of a past transaction has greet, or something to edit")
	}
	p.screenshot("as-of.png")
	p.click("#now-link")
	p.waitFor(`document.querySelector('#outliner:not(.as-of) li.slot[data-name="greet"]')`)
}

// TestBrowserFiguresLargeObject times the outliner of an object of
// 10,000 slots: the server's inspect (in process and over HTTP) and the
// browser's first render of its first page of slots. The figures are
// logged (go test -run TestBrowserFiguresLargeObject -v ./internal/webui);
// the test checks what the page shows, never how fast.
func TestBrowserFiguresLargeObject(t *testing.T) {
	const slots = 10_000
	s := startStack(t, false)
	ctx := context.Background()
	began := time.Now()
	res, err := s.svc.Eval(ctx, command.EvalRequest{Code: fmt.Sprintf(
		"big = new([genesis], name='big')\nfor i in range(%d):\n    set_slot(big, 's' + str(i), i)\ngenesis.big = big\noid(big)", slots)})
	if err != nil {
		t.Fatal(err)
	}
	oid := strings.Trim(res.Repr, `"`)
	t.Logf("made an object of %d slots in %v", slots, time.Since(began).Round(time.Millisecond))
	began = time.Now()
	view, err := s.svc.Inspect(ctx, oid)
	inProcess := time.Since(began)
	if err != nil || len(view.Own) != slots+2 {
		t.Fatalf("inspect %s: %d slots, %v", oid, len(view.Own), err)
	}
	overHTTP, size := timeInspectOverHTTP(t, s, oid)

	p := openPage(t, s, "#/object/genesis")
	p.waitFor(`document.querySelector('#outliner h1')`)
	// From the route change to the first page of slots on screen.
	eval[any](p, fmt.Sprintf(`window.renderStart = performance.now();
		new MutationObserver((_, seen) => {
			if (document.querySelector('#outliner ul.slots.own li.slot')) { window.renderEnd = performance.now(); seen.disconnect(); }
		}).observe(document.getElementById('main'), { childList: true, subtree: true });
		location.hash = %s`, jsString("#/object/"+oid)))
	p.waitFor(`window.renderEnd !== undefined`)
	rendered := eval[float64](p, `window.renderEnd - window.renderStart`)
	shown := eval[int](p, `document.querySelectorAll('#outliner ul.slots.own li.slot').length`)
	if shown != 200 {
		t.Errorf("the first page shows %d slots, want 200", shown)
	}
	if got := p.text("#outliner button.slots-more"); !strings.Contains(got, fmt.Sprint(slots+2-200)) {
		t.Errorf("the more button reads %q", got)
	}
	t.Logf("an object of %d slots: inspect %v in process, %v over HTTP (%d KiB of JSON); the browser's first page of 200 slots %.0f ms after the route changed",
		slots, inProcess.Round(time.Millisecond), overHTTP.Round(time.Millisecond), size/1024, rendered)
}

// timeInspectOverHTTP times one inspect of target through the HTTP API,
// as the page calls it, answering the time and the reply's size.
func timeInspectOverHTTP(t *testing.T, s *stack, target string) (time.Duration, int) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := c.Get(s.base + "/api/v1/session")
	if err != nil {
		t.Fatal(err)
	}
	var session struct{ Result struct{ CSRF string } }
	err = json.NewDecoder(resp.Body).Decode(&session)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", s.base+"/api/v1/inspect", strings.NewReader(`{"target": `+jsString(target)+`}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Batos-CSRF", session.Result.CSRF)
	req.Header.Set("Origin", s.base)
	began := time.Now()
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(began)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("inspect over HTTP: %d %v", resp.StatusCode, err)
	}
	return took, len(b)
}
