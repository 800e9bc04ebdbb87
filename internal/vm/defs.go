package vm

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Def is a function an Eval input defined at its top level, kept by its
// source: a def statement, or a name assigned a lambda. A function value
// can be neither stored in the image nor kept past its execution (it
// would hold the objects of a transaction that has ended), so a REPL
// session carries the definition instead and EvalAfter runs it again
// before the next input. Its default values are therefore evaluated
// again in each input.
type Def struct {
	// Name is the global the function is bound to.
	Name string
	// Source is the statement that defines it, as the input wrote it.
	Source string
}

// inputDef is a Def of the input being run, with where its function
// begins, to know the function it made from others bound to its name.
type inputDef struct {
	Def
	line, col int32
}

// topDefs lists the statements of f, parsed from code, that define a
// named function at the top level: def NAME(...), and NAME = lambda.
func topDefs(f *syntax.File, code string) []inputDef {
	var defs []inputDef
	for _, s := range f.Stmts {
		var name string
		var fn syntax.Position // where the function value begins
		switch s := s.(type) {
		case *syntax.DefStmt:
			name, fn = s.Name.Name, s.Def
		case *syntax.AssignStmt:
			id, isName := s.LHS.(*syntax.Ident)
			lambda, isLambda := s.RHS.(*syntax.LambdaExpr)
			if s.Op != syntax.EQ || !isName || !isLambda {
				continue
			}
			name, fn = id.Name, lambda.Lambda
		default:
			continue
		}
		start, end := s.Span()
		defs = append(defs, inputDef{Def: Def{Name: name, Source: sourceBetween(code, start, end)}, line: fn.Line, col: fn.Col})
	}
	return defs
}

// sourceBetween is the text of code from start up to end, positions
// counted as the Starlark scanner counts them (lines from 1, columns in
// runes from 1, CR LF one line end).
func sourceBetween(code string, start, end syntax.Position) string {
	return code[offsetOf(code, start):offsetOf(code, end)]
}

func offsetOf(code string, p syntax.Position) int {
	line, col := int32(1), int32(1)
	for i := 0; i < len(code); {
		if line > p.Line || line == p.Line && col >= p.Col {
			return i
		}
		r, size := utf8.DecodeRuneInString(code[i:])
		switch {
		case r == '\r' && strings.HasPrefix(code[i+1:], "\n"):
			size = 2
			fallthrough
		case r == '\n':
			line, col = line+1, 1
		default:
			col++
		}
		i += size
	}
	return len(code)
}

// define runs defs into env, in order, each as a chunk of its own (so
// the input's errors keep the input's own line numbers). It answers the
// functions they bound, by name. A definition that no longer runs (a
// default value whose object has lost the slot, say) is forgotten, with
// a note in the output; the execution stopping (cancelled, a limit) is
// an error.
func (ex *execution) define(env starlark.StringDict, defs []Def) (map[string]*starlark.Function, error) {
	made := make(map[string]*starlark.Function, len(defs))
	for _, d := range defs {
		err := defineOne(ex.thread, env, d)
		if err != nil {
			if stop := ex.stopped(); stop != nil {
				return nil, err
			}
			delete(env, d.Name)
			ex.print(fmt.Sprintf("note: %s, defined in an earlier input, is forgotten: defining it again failed: %v", d.Name, err))
			continue
		}
		if fn, ok := env[d.Name].(*starlark.Function); ok {
			made[d.Name] = fn
		}
	}
	return made, nil
}

func defineOne(thread *starlark.Thread, env starlark.StringDict, d Def) error {
	f, err := evalOptions.Parse("<def "+d.Name+">", d.Source, 0)
	if err != nil {
		return err
	}
	guardFile(f)
	return starlark.ExecREPLChunk(f, thread, env)
}

// carried sorts the functions an input left bound into the definitions
// that carry to the next input: those of given (in env as made) still
// bound to what they made, then those of the input's own (mine) bound to
// the function their statement made; a name defined again moves to the
// end, after what its defaults may read.
func carried(defined starlark.StringDict, given []Def, made map[string]*starlark.Function, mine []inputDef) []Def {
	var defs []Def
	last := map[string]inputDef{}
	for _, d := range mine {
		last[d.Name] = d
	}
	for _, d := range given {
		if _, again := last[d.Name]; again {
			continue
		}
		if fn, ok := defined[d.Name].(*starlark.Function); ok && fn == made[d.Name] {
			defs = append(defs, d)
		}
	}
	for _, d := range mine {
		fn, ok := defined[d.Name].(*starlark.Function)
		if !ok || last[d.Name] != d {
			continue
		}
		if pos := fn.Position(); pos.Filename() == inputFile && pos.Line == d.line && pos.Col == d.col {
			defs = append(defs, d.Def)
		}
	}
	return defs
}
