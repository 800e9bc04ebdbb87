package vm_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/vm"
)

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

func TestSendFromGo(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(nil)
	setMethod(t, db, m, "greet", "def greet(self, name, punct = '.'):\n    print('greeting', name)\n    return 'hello ' + name + punct")
	var res vm.Result
	err := db.View(ctx, func(tx *image.Tx) error {
		var err error
		res, err = m.Send(ctx, tx, genesisOID(t, db), "greet", []image.Value{image.String("ada")}, []image.Slot{{Name: "punct", Value: image.String("!")}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !image.Equal(res.Value, image.String("hello ada!")) || res.Output != "greeting ada\n" {
		t.Errorf("got %+v, want hello ada! and captured print", res)
	}
}

// TestErrorsCarryBacktrace: a failure deep in a chain of sends names each
// method and line.
func TestErrorsCarryBacktrace(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(nil)
	setMethod(t, db, m, "outer", "def outer(self):\n    return self.middle()")
	setMethod(t, db, m, "middle", "def middle(self):\n    x = 1\n    return self.inner(x)")
	setMethod(t, db, m, "inner", "def inner(self, x):\n    return x / 0")
	_, err := sendUpdate(t, db, m, "outer")
	var ve *vm.Error
	if !errors.As(err, &ve) {
		t.Fatalf("got %v, want *vm.Error", err)
	}
	for _, want := range []string{"outer.star:2", "in outer", "middle.star:3", "in middle", "inner.star:2", "in inner", "division by zero"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%s", want, err)
		}
	}
}

type recordingHandler struct{ msgs []*vm.Message }

func (h *recordingHandler) DoesNotUnderstand(ctx context.Context, tx *image.Tx, msg *vm.Message) (image.Value, error) {
	h.msgs = append(h.msgs, msg)
	return image.String("learned " + msg.Selector), nil
}

func TestDoesNotUnderstand(t *testing.T) {
	db := imagetest.Open(t, nil)
	t.Run("default handler", func(t *testing.T) {
		before := db.Store().LastTID()
		_, err := sendUpdate(t, db, vm.New(nil), "display_yourself")
		var nu *vm.NotUnderstoodError
		if !errors.As(err, &nu) || !errors.Is(err, vm.ErrNoMind) {
			t.Fatalf("got %v, want NotUnderstoodError", err)
		}
		for _, want := range []string{"(genesis)", `"display_yourself"`, "no mind: no inference server has answered yet"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
		if db.Store().LastTID() != before {
			t.Errorf("a not-understood send committed")
		}
	})
	t.Run("custom handler gets receiver, selector and arguments", func(t *testing.T) {
		h := &recordingHandler{}
		m := vm.New(&vm.Options{Handler: h})
		setMethod(t, db, m, "caller", "def caller(self):\n    return self.unknown_thing(1, 'two', k = [3])")
		res, err := sendUpdate(t, db, m, "caller")
		if err != nil || res.Repr != `"learned unknown_thing"` {
			t.Fatalf("got %q %v", res.Repr, err)
		}
		if len(h.msgs) != 1 {
			t.Fatalf("handler called %d times", len(h.msgs))
		}
		msg := h.msgs[0]
		if msg.Receiver != genesisOID(t, db) || msg.Selector != "unknown_thing" || len(msg.Args) != 2 || len(msg.Kwargs) != 1 || msg.Kwargs[0].Name != "k" {
			t.Errorf("message %+v", msg)
		}
	})
}

// TestMethodsCompiledOnce: the same source under the same name compiles
// once however many objects hold it and however often it runs.
func TestMethodsCompiledOnce(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(nil)
	src := "def twice(self, x):\n    return 2 * x"
	setMethod(t, db, m, "twice", src)
	for i := range 5 {
		res, err := sendUpdate(t, db, m, "twice", image.Int(int64(i)))
		if err != nil || !image.Equal(res.Value, image.Int(int64(2*i))) {
			t.Fatalf("twice(%d) = %v %v", i, res.Value, err)
		}
	}
	if n := m.CompiledMethods(); n != 1 {
		t.Errorf("compiled %d functions, want 1", n)
	}
	setMethod(t, db, m, "twice", src+"\n") // new source, new compilation
	sendUpdate(t, db, m, "twice", image.Int(1))
	if n := m.CompiledMethods(); n != 2 {
		t.Errorf("compiled %d functions after a source change, want 2", n)
	}
}

func TestPrimitives(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(&vm.Options{Primitives: map[string]vm.Primitive{
		"echo": func(ctx context.Context, tx *image.Tx, self image.Ref, args []image.Value) (image.Value, error) {
			return image.NewList(append([]image.Value{self}, args...)...), nil
		},
	}})
	err := db.Update(ctx, func(tx *image.Tx) error {
		g, err := tx.Object(genesisOID(t, db))
		if err != nil {
			return err
		}
		g.Set("echo", image.Primitive{Name: "echo"})
		return g.Set("missing", image.Primitive{Name: "not_registered"})
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := sendUpdate(t, db, m, "echo", image.Int(7))
	if err != nil || !strings.Contains(res.Repr, "7") {
		t.Errorf("echo: %q %v", res.Repr, err)
	}
	if _, err := sendUpdate(t, db, m, "missing"); err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Errorf("unregistered primitive: %v", err)
	}
}

// TestHostileBadMethodSlotsStoredDirectly: method slots written through the
// image API skip method()'s checks; a send to one must fail cleanly, and
// the VM keep serving.
func TestHostileBadMethodSlotsStoredDirectly(t *testing.T) {
	huge := "def big(self):\n    x = 0\n" + strings.Repeat("    x = x + 1\n", 50_000) + "    return x"
	cases := []struct{ slot, source, want string }{
		{"wrong", "def other(self):\n    return 1", "must be named like its slot"},
		{"broken", "def broken(self):\n    return (", "broken.star:2"},
		{"loader", "load('x.star', 'y')\ndef loader(self):\n    return 1", "load is not available"},
		{"twice", "def twice(self):\n    return 1\ndef twice2(self):\n    return 2", "more than one function"},
		{"noself", "def noself(x):\n    return 1", "first parameter must be self"},
		{"toplevel", "x = 1\ndef toplevel(self):\n    return x", "only a docstring and one def"},
		{"undefined", "def undefined(self):\n    return open('/etc/passwd')", "undefined: open"},
		{"nested", "def nested(self):\n    return " + strings.Repeat("(", 5000) + "1" + strings.Repeat(")", 5000), "excessive nesting"},
		{"empty", "", "defines no function"},
		{"big", huge, ""},
	}
	db := imagetest.Open(t, nil)
	m := vm.New(nil)
	for _, tc := range cases {
		setGenesisSlot(t, db, tc.slot, &image.Method{Source: tc.source})
	}
	for _, tc := range cases {
		t.Run(tc.slot, func(t *testing.T) {
			before := db.Store().LastTID()
			res, err := sendUpdate(t, db, m, tc.slot)
			switch {
			case tc.want == "" && (err != nil || res.Repr != "50000"):
				t.Errorf("got %q %v, want 50000", res.Repr, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
			if db.Store().LastTID() != before {
				t.Errorf("the send committed")
			}
		})
	}
	setMethod(t, db, m, "fine", "def fine(self):\n    return slots(self)")
	if res, err := sendUpdate(t, db, m, "fine"); err != nil || !strings.Contains(res.Repr, `"broken"`) {
		t.Errorf("the VM after the bad methods: %q %v", res.Repr, err)
	}
}

func TestHostileInjectedClock(t *testing.T) {
	db := imagetest.Open(t, nil)
	at := time.Date(2001, 2, 3, 4, 5, 6, 500_000_000, time.UTC)
	m := vm.New(&vm.Options{Now: func() time.Time { return at }})
	setMethod(t, db, m, "stamp", "def stamp(self):\n    return [time.now(), time.now()]")
	res, err := sendUpdate(t, db, m, "stamp")
	want := float64(at.UnixNano()) / 1e9
	if err != nil || !image.Equal(res.Value, image.NewList(image.Float(want), image.Float(want))) {
		t.Errorf("got %v %v, want [%v, %v] from the injected clock", res.Repr, err, want, want)
	}
}

type writingHandler struct{}

func (writingHandler) DoesNotUnderstand(ctx context.Context, tx *image.Tx, msg *vm.Message) (image.Value, error) {
	if _, err := tx.New(image.Slot{Name: "learned", Value: image.String(msg.Selector)}); err != nil {
		return nil, err
	}
	return image.String("learned"), nil
}

// TestHostileDoesNotUnderstandInView: in a read-only execution the
// handler gets the read-only transaction and cannot change the image.
func TestHostileDoesNotUnderstandInView(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(&vm.Options{Handler: writingHandler{}})
	setMethod(t, db, m, "ask", "def ask(self):\n    return self.unknown(1)")
	err := db.View(ctx, func(tx *image.Tx) error {
		_, err := m.Send(ctx, tx, genesisOID(t, db), "ask", nil, nil)
		return err
	})
	if !errors.Is(err, image.ErrReadOnly) {
		t.Errorf("handler writing in a view: got %v, want image.ErrReadOnly", err)
	}
	res, err := sendUpdate(t, db, m, "ask")
	if err != nil || res.Repr != `"learned"` {
		t.Errorf("the same send in an update: %q %v", res.Repr, err)
	}
}
