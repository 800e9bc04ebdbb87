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
		for _, want := range []string{"(genesis)", `"display_yourself"`, "no mind is configured"} {
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
