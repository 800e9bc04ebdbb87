package vm

import (
	"fmt"
	"strings"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// fileOptions is the Starlark dialect of method code: while loops and
// recursion allowed (sends re-enter methods; the limits bound both), no
// top-level control flow, no global reassignment.
var fileOptions = &syntax.FileOptions{While: true, Recursion: true, Set: true}

// methodKey names a compiled method by its source itself: looking it up
// hashes the source as a map does, far cheaper than a digest, on every
// call; the key holds a string the image's cached method holds anyway.
type methodKey struct {
	source string
	name   string
}

// compile returns the function a method slot's source defines, compiling
// it once per source and name. The function's globals are frozen, so
// executions share it safely.
func (vm *VM) compile(source, name string) (*starlark.Function, error) {
	key := methodKey{source, name}
	if fn, ok := vm.methods.Load(key); ok {
		return fn.(*starlark.Function), nil
	}
	f, err := checkShape(source, name)
	if err != nil {
		return nil, err
	}
	guardFile(f)
	prog, err := starlark.FileProgram(f, isPredeclared)
	if err != nil {
		return nil, err
	}
	// Initialising runs only the def statement (defaults are constants,
	// see CheckMethod); still, it runs bounded and prints nowhere.
	thread := &starlark.Thread{Name: "compile " + name, Print: func(*starlark.Thread, string) {}}
	thread.SetMaxExecutionSteps(10_000)
	globals, err := prog.Init(thread, predeclared)
	if err != nil {
		return nil, err
	}
	globals.Freeze()
	fn, _ := globals[name].(*starlark.Function)
	if fn == nil {
		return nil, fmt.Errorf("source defines no function %s", name)
	}
	actual, _ := vm.methods.LoadOrStore(key, fn)
	return actual.(*starlark.Function), nil
}

// CheckMethod parses method source and checks its shape: exactly one
// function, named name, whose first parameter is self, with nothing else
// at top level but a docstring, and no load; and that it compiles, as
// Starlark's resolver checks (x[i:j] += y, an undefined name).
func CheckMethod(source, name string) (*syntax.File, error) {
	f, err := checkShape(source, name)
	if err != nil {
		return nil, err
	}
	// Resolved on a copy of its own: resolving marks the tree, which
	// compile resolves again after rewriting it.
	g, _ := fileOptions.Parse(name+".star", source, 0)
	if err := resolve.File(g, isPredeclared, starlark.Universe.Has); err != nil {
		return nil, fmt.Errorf("method %s: %w", name, err)
	}
	return f, nil
}

// checkShape is CheckMethod without the resolver.
func checkShape(source, name string) (*syntax.File, error) {
	f, err := fileOptions.Parse(name+".star", source, 0)
	if err != nil {
		return nil, fmt.Errorf("method %s: %w", name, err)
	}
	var def *syntax.DefStmt
	for i, stmt := range f.Stmts {
		switch s := stmt.(type) {
		case *syntax.DefStmt:
			if def != nil {
				return nil, fmt.Errorf("method %s: line %d: source defines more than one function", name, s.Def.Line)
			}
			def = s
		case *syntax.ExprStmt:
			if _, ok := s.X.(*syntax.Literal); ok && i == 0 {
				continue // a docstring
			}
			return nil, fmt.Errorf("method %s: line %d: only a docstring and one def may stand at top level", name, startLine(stmt))
		case *syntax.LoadStmt:
			return nil, fmt.Errorf("method %s: line %d: load is not available to method code", name, startLine(stmt))
		default:
			return nil, fmt.Errorf("method %s: line %d: only a docstring and one def may stand at top level", name, startLine(stmt))
		}
	}
	if def == nil {
		return nil, fmt.Errorf("method %s: source defines no function (want def %s(self, ...))", name, name)
	}
	if def.Name.Name != name {
		return nil, fmt.Errorf("method %s: line %d: the function is named %s; it must be named like its slot, %s", name, def.Def.Line, def.Name.Name, name)
	}
	if len(def.Params) == 0 {
		return nil, fmt.Errorf("method %s: line %d: the first parameter must be self", name, def.Def.Line)
	}
	if p, ok := def.Params[0].(*syntax.Ident); !ok || p.Name != "self" {
		return nil, fmt.Errorf("method %s: line %d: the first parameter must be self", name, def.Def.Line)
	}
	for _, p := range def.Params {
		// Defaults are evaluated when the method is compiled, outside any
		// execution and its limits: only constants may stand there.
		if b, ok := p.(*syntax.BinaryExpr); ok && b.Op == syntax.EQ && !isConstant(b.Y) {
			return nil, fmt.Errorf("method %s: line %d: the default of parameter %s must be a constant (None, a number, a string, or a list, tuple or dict of them)", name, startLine(b), b.X.(*syntax.Ident).Name)
		}
	}
	return f, nil
}

// isConstant reports whether e is a literal, None/True/False, or a
// container of them.
func isConstant(e syntax.Expr) bool {
	switch e := e.(type) {
	case *syntax.Literal:
		return true
	case *syntax.Ident:
		return e.Name == "None" || e.Name == "True" || e.Name == "False"
	case *syntax.UnaryExpr:
		return (e.Op == syntax.MINUS || e.Op == syntax.PLUS) && isConstant(e.X)
	case *syntax.ParenExpr:
		return isConstant(e.X)
	case *syntax.TupleExpr:
		return allConstant(e.List)
	case *syntax.ListExpr:
		return allConstant(e.List)
	case *syntax.DictExpr:
		for _, entry := range e.List {
			kv := entry.(*syntax.DictEntry)
			if !isConstant(kv.Key) || !isConstant(kv.Value) {
				return false
			}
		}
		return true
	}
	return false
}

func allConstant(es []syntax.Expr) bool {
	for _, e := range es {
		if !isConstant(e) {
			return false
		}
	}
	return true
}

func startLine(n syntax.Node) int {
	start, _ := n.Span()
	return int(start.Line)
}

// evalOptions is the dialect of Eval input (a REPL, batos eval): method
// code's, plus control flow at top level and reassigned globals.
var evalOptions = &syntax.FileOptions{While: true, Recursion: true, Set: true, TopLevelControl: true, GlobalReassign: true}

// ParseREPL reads one REPL input, calling readline for each line until
// the input is complete: a simple statement or an expression is complete
// at the end of its line, a compound statement (def, if, for, while) at
// the first empty line after it. It parses in the dialect Eval runs, so
// a terminal can tell when to stop asking for lines without a Starlark
// parser of its own, and returns the syntax error, if any. A readline
// error (io.EOF at the end of input) ends the input with a syntax error
// that only quotes it: a caller that must tell the end of input from a
// mistake keeps the readline error itself. The caller also keeps the
// lines it hands out; the code to Eval is their concatenation.
func ParseREPL(readline func() ([]byte, error)) error {
	_, err := evalOptions.ParseCompoundStmt("<input>", readline)
	return err
}

// evalChunk runs REPL or eval input, as a REPL would: the value is the
// input's last expression statement's, when its last top-level
// statement is one (an input that is one expression included), else
// None; the globals (those given and those defined or changed) are
// handed back either way, with the input's top-level function
// definitions. Unless answerLast, statements answer None
// whatever the last one.
func evalChunk(thread *starlark.Thread, code string, env starlark.StringDict, answerLast bool) (starlark.Value, starlark.StringDict, []inputDef, error) {
	if expr, err := evalOptions.ParseExpr(inputFile, code, 0); err == nil {
		v, err := starlark.EvalExprOptions(evalOptions, thread, guardExpr(expr), env)
		if err != nil {
			return nil, nil, nil, err
		}
		// An expression may still change a variable in place
		// (l.append(x)): hand the globals back as statements do.
		return v, userGlobals(env), nil, nil
	}
	f, err := evalOptions.Parse(inputFile, code, 0)
	if err != nil {
		return nil, nil, nil, err
	}
	defs := topDefs(f, code)
	guardFile(f)
	var last syntax.Expr
	if n := len(f.Stmts); n > 0 && answerLast {
		if es, ok := f.Stmts[n-1].(*syntax.ExprStmt); ok {
			last, f.Stmts = es.X, f.Stmts[:n-1]
		}
	}
	// As in a REPL, the names given are the module's globals: the input
	// may read and reassign them, and what it leaves is handed back.
	globals := make(starlark.StringDict, len(env))
	for k, v := range env {
		globals[k] = v
	}
	if len(f.Stmts) > 0 {
		if err := starlark.ExecREPLChunk(f, thread, globals); err != nil {
			return nil, nil, nil, err
		}
	}
	var v starlark.Value = starlark.None
	if last != nil {
		// Already guarded with the rest of the file.
		if v, err = starlark.EvalExprOptions(evalOptions, thread, last, globals); err != nil {
			return nil, nil, nil, err
		}
	}
	return v, userGlobals(globals), defs, nil
}

// inputFile is the file name of Eval input in positions and backtraces.
const inputFile = "<input>"

// userGlobals is env without the built-ins, guards and temporaries.
func userGlobals(env starlark.StringDict) starlark.StringDict {
	globals := make(starlark.StringDict, len(env))
	for k, v := range env {
		if !isBuiltinValue(k, v) {
			globals[k] = v
		}
	}
	return globals
}

// isBuiltinValue reports whether global name is a guard or temporary
// of rewritten code, or still holds the built-in of that name (input may
// rebind one, list = [1] say, and keep it).
func isBuiltinValue(name string, v starlark.Value) bool {
	if strings.HasPrefix(name, "$") {
		return true
	}
	b, ok := builtins[name]
	return ok && b == v
}
