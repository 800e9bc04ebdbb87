package webui_test

// Real-browser tests of the web UI: headless Chromium driven through
// chromedp against a whole batos (uvm.Serve with the HTTP API and this
// UI, a scripted mind). BATOS_SCREENSHOTS=DIR saves a screenshot of each
// page visited; a failing test saves its page in
// $BATOS_BROWSER_ARTIFACTS.

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"batos/internal/command"
	"batos/internal/store"
)

// The outliner of genesis shows its name and slots, and its parent link
// opens the parent's outliner.
func TestBrowserOutlinerFollowsParent(t *testing.T) {
	s := startStack(t, true)
	p := openPage(t, s, "#/object/genesis")
	p.waitFor(`document.querySelector('#outliner h1 .object-name')?.textContent === 'genesis'`)
	p.waitFor(`document.querySelectorAll('#outliner ul.slots.own li.slot').length > 0`)
	oid := p.text("#outliner .object-oid")
	if !strings.HasPrefix(oid, "oid:") {
		t.Fatalf("genesis's OID shows as %q", oid)
	}
	p.screenshot("outliner.png")

	parent := eval[string](p, `document.querySelector('#outliner p.parents a.ref')?.dataset.oid ?? ''`)
	if parent == "" || parent == oid {
		t.Fatalf("genesis's parent link names %q (genesis is %s)", parent, oid)
	}
	p.click("#outliner p.parents a.ref")
	p.waitFor(fmt.Sprintf(`location.hash === %s && document.querySelector('#outliner .object-oid')?.textContent === %s`,
		jsString("#/object/"+parent), jsString(parent)))
	if got := p.text("#outliner .object-oid"); got == oid {
		t.Errorf("after following the parent link the outliner still shows %s", got)
	}
	// The parent has slots of its own (the traits' methods).
	p.waitFor(`document.querySelectorAll('#outliner ul.slots.own li.slot').length > 0`)
}

// A method edited in the outliner and refused shows the refusal and the
// line it names, and the method is left as it was.
func TestBrowserMethodEditRefusedAtLine(t *testing.T) {
	s := startStack(t, true)
	const good = "def greet(self):\n    return \"hello\"\n"
	if _, err := s.svc.SetMethod(context.Background(), command.MethodRequest{Target: "genesis", Name: "greet", Source: good}); err != nil {
		t.Fatal(err)
	}
	p := openPage(t, s, "#/object/genesis")
	const slot = `#outliner li.slot[data-name="greet"][data-kind="method"]`
	p.click(slot + " button.edit")
	p.waitFor(fmt.Sprintf(`document.querySelector(%s)?.value === %s`, jsString(slot+" textarea.method-editor"), jsString(good)))

	refused := []struct {
		what, source string
		line         int
	}{
		{"a syntax error", "def greet(self):\n    x = 1\n    return x +* 2\n", 3},
		{"a load statement (the guardian)", "def greet(self):\n    return 1\nload(\"m.star\", \"x\")\n", 3},
		{"an undefined name (the resolver)", "def greet(self):\n    x = 1\n    return nosuch + x\n", 3},
	}
	for _, r := range refused {
		p.setValue(slot+" textarea.method-editor", r.source)
		// Clear the last refusal, so that the one waited for is this one's.
		eval[any](p, fmt.Sprintf(`document.querySelector(%s).replaceChildren()`, jsString(slot+" .edit-result")))
		p.click(slot + " button.accept")
		p.waitFor(fmt.Sprintf(`document.querySelector(%s)`, jsString(slot+" .edit-result div.error")))
		note := eval[string](p, fmt.Sprintf(`document.querySelector(%s)?.textContent ?? ''`, jsString(slot+" .edit-result div.error .error-note")))
		msg := eval[string](p, fmt.Sprintf(`document.querySelector(%s)?.textContent ?? ''`, jsString(slot+" .edit-result div.error .error-message")))
		kind := eval[string](p, fmt.Sprintf(`document.querySelector(%s)?.textContent ?? ''`, jsString(slot+" .edit-result div.error .error-kind")))
		if want := fmt.Sprintf("at line %d", r.line); !strings.HasPrefix(note, want) {
			t.Errorf("%s: the refusal's note is %q, want %q (message %q)", r.what, note, want, msg)
		}
		if kind != string(command.KindBadRequest) {
			t.Errorf("%s: refused as %q, want %s", r.what, kind, command.KindBadRequest)
		}
		// The source is shown numbered, the line named marked.
		marked := eval[string](p, fmt.Sprintf(`[...document.querySelectorAll(%s)].map((e) => e.dataset.line).join(',')`,
			jsString(slot+" .edit-result pre.numbered .error-line")))
		if marked != strconv.Itoa(r.line) {
			t.Errorf("%s: lines marked %q, want %d (message %q)", r.what, marked, r.line, msg)
		}
		if r.line == 3 && r.what == "a syntax error" {
			p.screenshot("method-refused.png")
		}
	}

	// Nothing changed: the page read again shows the method as it was,
	// and it still answers.
	p.do(reload())
	p.waitFor(fmt.Sprintf(`document.querySelector(%s)?.textContent === %s`, jsString(slot+" pre.source"), jsString(good)))
	res, err := s.svc.Eval(context.Background(), command.EvalRequest{Code: "self.greet()", Self: "genesis"})
	if err != nil || res.Repr != `"hello"` {
		t.Errorf("greet after the refusals: %q, %v", res.Repr, err)
	}
}

// The evaluator prints what genesis answers to describe (a method it
// inherits from traits).
func TestBrowserEvaluatorPrintsDescribe(t *testing.T) {
	s := startStack(t, true)
	p := openPage(t, s, "#/object/genesis")
	p.waitFor(`document.querySelector('#eval-code')`)
	oid := p.text("#outliner .object-oid")
	p.setValue("#eval-code", "self.describe()")
	p.click("#print-it")
	p.waitFor(`document.querySelector('#eval-result .eval-repr')`)
	got := p.text("#eval-result .eval-repr")
	if !strings.HasPrefix(got, `"genesis (`+oid+`): `) {
		t.Errorf("self.describe() printed %q, want \"genesis (%s): …\"", got, oid)
	}
	p.screenshot("evaluator.png")
}

// A message nothing understands, sent while there is no mind, is refused
// with a "learn it" button; once the mind answers, learning it opens the
// cycle's page, whose state row moves live to COMPLETE; then the message
// is understood. (With a mind from the start the evaluator's send waits
// for the cycle itself, and shows no button: see
// TestBrowserEvaluatorWaitsForLearning.)
func TestBrowserLearnItWatchesTheCycleLive(t *testing.T) {
	s := startStack(t, false)
	p := openPage(t, s, "#/object/genesis")
	p.waitFor(`document.querySelector('#eval-code')`)
	p.setValue("#eval-code", "self.shout_name()")
	p.click("#do-it")
	p.waitFor(`document.querySelector('#eval-result #learn-it')`)
	if msg := p.text("#eval-result div.error .error-message"); !strings.Contains(msg, `does not understand "shout_name"`) {
		t.Errorf("the evaluator's error: %q", msg)
	}
	if kind := p.text("#eval-result div.error .error-kind"); kind != string(command.KindNoMind) {
		t.Errorf("the evaluator's error is %q, want %s", kind, command.KindNoMind)
	}
	s.enableMind(t) // the inference server answers now

	// Every 50 ms the page notes the highlighted state when it changes;
	// routes change the fragment only, so the recorder lives on.
	eval[any](p, `window.seenStates = [];
		window.setInterval(() => {
			const s = document.querySelector('#state-row li.state-step[aria-current="step"]')?.dataset.state;
			if (s && window.seenStates[window.seenStates.length - 1] !== s) window.seenStates.push(s);
		}, 50)`)
	p.click("#learn-it")
	p.waitFor(`/^#\/cycle\/[0-9]+$/.test(location.hash) && document.querySelector('#state-row li.state-step[aria-current="step"]')`)
	p.screenshot("cycle-live.png")
	p.waitFor(`document.querySelector('#state-row li.state-step[aria-current="step"]')?.dataset.state === 'COMPLETE'`)
	p.waitFor(`window.seenStates[window.seenStates.length - 1] === 'COMPLETE'`)
	seen := eval[[]string](p, `window.seenStates`)
	t.Logf("states seen: %v", seen)
	if len(seen) < 2 {
		t.Errorf("the state row showed %v: want at least one state before COMPLETE", seen)
	}
	for i, st := range seen {
		if st == "FAILED" || (st == "COMPLETE" && i != len(seen)-1) {
			t.Errorf("the state row showed %v", seen)
			break
		}
	}
	// The deliveries list shows the answer once the cycle has delivered,
	// and the page has read the finished cycle (no cancel any more).
	p.waitFor(`document.querySelector('#cycle ul.deliveries li.delivery[data-state="answered"]')?.textContent.includes('shout_name') && !document.querySelector('#cycle-cancel')`)
	p.screenshot("cycle-complete.png")

	// The cycles page lists it, complete.
	p.route("#/cycles")
	p.waitFor(`document.querySelector('#cycles tr.cycle[data-state="COMPLETE"]')`)
	p.screenshot("cycles.png")
	// The mind page shows the personas that learned it.
	p.route("#/mind")
	p.waitFor(`document.querySelector('tr.persona[data-name="BRICK"]') && document.querySelector('tr.persona[data-name="ROBIN"]')`)
	p.screenshot("mind.png")

	// The message is understood now.
	p.route("#/object/genesis")
	p.waitFor(`document.querySelector('#outliner li.slot[data-name="shout_name"]') && document.querySelector('#eval-code')`)
	p.setValue("#eval-code", "self.shout_name()")
	p.click("#print-it")
	p.waitFor(`document.querySelector('#eval-result .eval-repr')`)
	if got := p.text("#eval-result .eval-repr"); got != `"shout_name"` {
		t.Errorf("self.shout_name() after learning: %q", got)
	}
}

// The timeline undoes the newest of three commits to one object, and
// refuses to undo the oldest, naming the transaction in the way.
func TestBrowserTimelineUndo(t *testing.T) {
	s := startStack(t, true)
	p := openPage(t, s, "#/object/genesis")
	p.waitFor(`document.querySelector('#eval-code')`)
	for i := 1; i <= 3; i++ {
		p.setValue("#eval-code", fmt.Sprintf("self.counter = %d", i))
		p.click("#do-it") // the result reads Running… at once, then Done.
		p.waitFor(`document.querySelector('#eval-result .eval-done')`)
		p.waitFor(fmt.Sprintf(`document.querySelector('#outliner li.slot[data-name="counter"] .slot-body')?.textContent === '%d'`, i))
	}
	txs, err := s.svc.Log(context.Background(), store.LogQuery{Limit: 3})
	if err != nil || len(txs) != 3 {
		t.Fatalf("log: %v, %v", txs, err)
	}
	newest, oldest := txs[0].TID.String(), txs[2].TID.String()

	p.route("#/log")
	row := func(tid string) string { return fmt.Sprintf(`#log tr.tx[data-tid="%s"]`, tid) }
	p.waitFor(fmt.Sprintf(`document.querySelector(%s) && document.querySelector(%s)`, jsString(row(newest)), jsString(row(oldest))))
	p.screenshot("timeline.png")
	p.acceptConfirms()

	p.clickNow(row(newest) + " button.undo")
	p.waitFor(`document.querySelector('#log-status p.notice')`)
	if got := p.text("#log-status p.notice"); !strings.HasPrefix(got, "Undid "+newest) {
		t.Errorf("after undoing %s the status reads %q", newest, got)
	}
	res, err := s.svc.Eval(context.Background(), command.EvalRequest{Code: "self.counter", Self: "genesis"})
	if err != nil || res.Repr != "2" {
		t.Errorf("counter after the undo: %q, %v; want 2", res.Repr, err)
	}

	undos, err := s.svc.Log(context.Background(), store.LogQuery{Limit: 1})
	if err != nil || len(undos) != 1 {
		t.Fatalf("log: %v, %v", undos, err)
	}
	undo := undos[0].TID.String()
	if !strings.HasSuffix(p.text("#log-status p.notice"), " as "+undo+".") {
		t.Errorf("the notice does not name the undo's transaction %s", undo)
	}

	// The timeline reloads with the undo on top; the oldest stays below.
	p.waitFor(fmt.Sprintf(`document.querySelector('#log tr.tx')?.dataset.tid === %s && document.querySelector(%s)`,
		jsString(undo), jsString(row(oldest))))
	p.clickNow(row(oldest) + " button.undo")
	p.waitFor(`document.querySelector('#log-status div.error[data-kind="conflict"]')`)
	msg := p.text(`#log-status div.error[data-kind="conflict"] .error-message`)
	note := p.text(`#log-status div.error[data-kind="conflict"] .error-note`)
	// The object was last changed by the undo (which restored what the
	// middle one wrote): that is the transaction named.
	if !strings.Contains(msg, "cannot undo "+oldest) || !strings.Contains(msg, "changed by "+undo) {
		t.Errorf("undoing %s was refused with %q: want it to name %s as changing the object since", oldest, msg, undo)
	}
	if !strings.Contains(note, "undo them first") {
		t.Errorf("the refusal's note: %q", note)
	}
	p.screenshot("undo-refused.png")
	res, err = s.svc.Eval(context.Background(), command.EvalRequest{Code: "self.counter", Self: "genesis"})
	if err != nil || res.Repr != "2" {
		t.Errorf("counter after the refused undo: %q, %v; want 2", res.Repr, err)
	}

	// genesis's history lists its revisions, the undo's among them.
	oid := eval[string](p, fmt.Sprintf(`document.querySelector(%s)?.dataset.oid ?? ''`, jsString(row(oldest)+" a.ref")))
	if oid == "" {
		t.Fatalf("the row of %s links no object", oldest)
	}
	p.route("#/history/" + oid)
	p.waitFor(fmt.Sprintf(`[%s, %s].every((tid) => document.querySelector('#history tr.revision[data-tid="' + tid + '"]'))`,
		jsString(oldest), jsString(newest)))
	p.screenshot("history.png")
}

// Values holding markup show as text: nothing in them runs or becomes an
// element.
func TestBrowserHostileValuesRenderAsText(t *testing.T) {
	s := startStack(t, true)
	hostile := map[string]string{
		"a": "<script>window.pwned=1</script>",
		"b": `"><img src=x onerror=window.pwned=2>`,
		"c": "javascript:alert(1)",
		"d": "<svg onload=window.pwned=3></svg>",
	}
	for name, v := range hostile {
		if _, err := s.svc.Eval(context.Background(), command.EvalRequest{Code: "self." + name + " = " + strconv.Quote(v), Self: "genesis"}); err != nil {
			t.Fatal(err)
		}
	}
	// A slot whose name is markup, too.
	const markupName = `<img src=x onerror=window.pwned=4>`
	named := true
	if _, err := s.svc.Eval(context.Background(), command.EvalRequest{Code: "set_slot(self, " + strconv.Quote(markupName) + ", 1)", Self: "genesis"}); err != nil {
		t.Logf("a slot named with markup is refused: %v", err)
		named = false
	}
	p := openPage(t, s, "#/object/genesis")
	if named {
		p.waitFor(fmt.Sprintf(`[...document.querySelectorAll('#outliner li.slot')].some((li) => li.dataset.name === %[1]s && li.querySelector('.slot-name')?.textContent === %[1]s)`,
			jsString(markupName)))
	}
	for name, v := range hostile {
		p.waitFor(fmt.Sprintf(`document.querySelector('#outliner li.slot[data-name="%s"] .v-str')?.textContent === JSON.stringify(%s)`, name, jsString(v)))
		if got := p.text(fmt.Sprintf(`#outliner li.slot[data-name="%s"] .v-str`, name)); !strings.Contains(got, v) {
			t.Errorf("slot %s shows %q, want the text %q", name, got, v)
		}
	}
	// The evaluator's output is text too.
	p.setValue("#eval-code", `print(self.a); self.b`)
	p.click("#print-it")
	p.waitFor(`document.querySelector('#eval-result .eval-output')`)
	if got := p.text("#eval-result .eval-output"); !strings.Contains(got, hostile["a"]) {
		t.Errorf("the evaluator printed %q", got)
	}
	// Give an onerror or onload a moment to fire, were there an element.
	p.do(sleep())
	if pwned := eval[any](p, `window.pwned`); pwned != nil {
		t.Errorf("window.pwned is %v: markup from the image ran", pwned)
	}
	if n := eval[int](p, `document.querySelectorAll('#main img, #main script, #main svg, #main iframe').length`); n != 0 {
		t.Errorf("%d elements were made from the image's text", n)
	}
	if n := eval[int](p, `[...document.querySelectorAll('#main a')].filter((a) => !a.getAttribute('href').startsWith('#/')).length`); n != 0 {
		t.Errorf("%d links lead out of the app's routes", n)
	}
}

// With a mind from the start, the evaluator's send of a message nothing
// understands waits while a cycle learns it, then answers.
func TestBrowserEvaluatorWaitsForLearning(t *testing.T) {
	s := startStack(t, true)
	p := openPage(t, s, "#/object/genesis")
	p.waitFor(`document.querySelector('#eval-code')`)
	p.setValue("#eval-code", "self.wave()")
	p.click("#print-it")
	p.waitFor(`document.querySelector('#eval-result .loading')`) // Running…
	p.waitFor(`document.querySelector('#eval-result .eval-repr')`)
	if got := p.text("#eval-result .eval-repr"); got != `"wave"` {
		t.Errorf("self.wave() answered %q, want \"wave\"", got)
	}
	// The outliner read genesis again: the learned method is there.
	p.waitFor(`document.querySelector('#outliner li.slot[data-name="wave"][data-kind="method"]')`)
}
