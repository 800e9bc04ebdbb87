package vm_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/store"
	"batos/internal/vm"
)

var ctx = context.Background()

// rootGlobals binds each root slot naming an object.
func rootGlobals(t testing.TB, db *image.DB) map[string]store.OID {
	t.Helper()
	g := map[string]store.OID{}
	err := db.View(ctx, func(tx *image.Tx) error {
		root, err := tx.Root()
		if err != nil {
			return err
		}
		for _, s := range root.Slots() {
			if r, ok := s.Value.(image.Ref); ok {
				g[s.Name] = store.OID(r)
			}
		}
		g["root"] = root.OID()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// testGlobals are assertion helpers for testdata scripts.
var testGlobals = starlark.StringDict{
	"assert_eq": starlark.NewBuiltin("assert_eq", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var x, y starlark.Value
		if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 2, &x, &y); err != nil {
			return nil, err
		}
		if ok, err := starlark.Equal(x, y); err != nil || !ok {
			return nil, fmt.Errorf("assert_eq: got %s, want %s", x, y)
		}
		return starlark.None, nil
	}),
	"assert_true": starlark.NewBuiltin("assert_true", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var x starlark.Value
		msg := "assertion failed"
		if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &x, &msg); err != nil {
			return nil, err
		}
		if !x.Truth() {
			return nil, fmt.Errorf("assert_true: %s", msg)
		}
		return starlark.None, nil
	}),
}

// TestScripts runs testdata/*.star. A script is a sequence of chunks
// separated by lines "---"; each chunk runs as one Update through Eval
// with the root's objects bound. A line "### error: REGEXP" says the
// chunk must fail with a matching error and change nothing (with several
// such lines the error must match each); "### view" runs it read-only.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.star")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata scripts: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			db := imagetest.Open(t, nil)
			var machine *vm.VM
			globalsWithVM := starlark.StringDict{
				"compiled_methods": starlark.NewBuiltin("compiled_methods", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
					return starlark.MakeInt(machine.CompiledMethods()), nil
				}),
			}
			for k, v := range testGlobals {
				globalsWithVM[k] = v
			}
			machine = vm.New(&vm.Options{Globals: globalsWithVM})
			globals := rootGlobals(t, db)
			line := 1
			for _, chunk := range strings.Split(string(src), "\n---\n") {
				runChunk(t, db, machine, globals, file, line, chunk)
				line += strings.Count(chunk, "\n") + 2
			}
		})
	}
}

var errorDirective = regexp.MustCompile(`(?m)^### error: (.*)$`)

func runChunk(t *testing.T, db *image.DB, machine *vm.VM, globals map[string]store.OID, file string, line int, chunk string) {
	t.Helper()
	var want []string
	for _, m := range errorDirective.FindAllStringSubmatch(chunk, -1) {
		want = append(want, m[1])
	}
	view := strings.Contains(chunk, "\n### view") || strings.HasPrefix(chunk, "### view")
	before := db.Store().LastTID()
	var err error
	run := func(tx *image.Tx) error {
		_, err := machine.Eval(ctx, tx, chunk, vm.GlobalsOf(globals))
		return err
	}
	if view {
		err = db.View(ctx, run)
	} else {
		err = db.Update(ctx, run)
	}
	where := fmt.Sprintf("%s:%d", file, line)
	switch {
	case want == nil && err != nil:
		t.Errorf("%s: %v", where, err)
	case want != nil && err == nil:
		t.Errorf("%s: succeeded, want error matching %q", where, want)
	case want != nil:
		for _, w := range want {
			if !regexp.MustCompile(w).MatchString(err.Error()) {
				t.Errorf("%s: error %q does not match %q", where, err, w)
			}
		}
		if db.Store().LastTID() != before {
			t.Errorf("%s: a failed chunk committed a transaction", where)
		}
	}
}
