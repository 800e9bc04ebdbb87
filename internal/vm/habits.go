package vm

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"batos/internal/image"
)

// Python habits. A model trained mostly on Python writes Python: an
// f-string, try/except, import, a class. Starlark's own messages name
// the token it stumbled on (got string literal, want newline; got try,
// want primary expression), which does not say what to write instead.
// Hint and TestHint recognise those habits in the source and in the
// error they caused, and say what this dialect has in their place. Each
// hint was checked against the VM (habits_test.go): none claims that
// something works which does not.

// habit is a Python construct that is not Starlark, found in source that
// does not parse.
type habit struct {
	// found reports whether w, the i-th word of the source, is the habit.
	found func(ws []word, i int) bool
	// absent reports whether the dialect lacks the construct: nil means
	// always (a reserved word, say).
	absent func(*syntax.FileOptions) bool
	hint   string
}

// keyword finds a word.
func keyword(kw ...string) func([]word, int) bool {
	return func(ws []word, i int) bool { return slices.Contains(kw, ws[i].text) }
}

// syntaxHabits are the habits that make source fail to parse, in the
// order their hints are given.
var syntaxHabits = []habit{
	{found: func(ws []word, i int) bool {
		return ws[i].prefix && strings.ContainsAny(ws[i].text, "fF") && strings.Trim(ws[i].text, "fFrRbB") == ""
	},
		hint: `f-strings do not exist here: write "total: %s" % total (several values: "%s of %s" % (a, b)), or "total: " + str(total)`},
	{found: keyword("import", "from"),
		hint: "import does not exist: method code loads no modules; json, math and time are already there (json.encode(x), math.sqrt(x), time.now())"},
	{found: keyword("class"),
		hint: "class does not exist: the receiver is the object; keep its state in its slots (self.count = 0) and make new objects with new(name = ...) or clone(obj)"},
	{found: keyword("try", "except", "finally"),
		hint: `try/except does not exist, and an error always stops the method: check first (if key in d:, if n != 0:) and return what the method should answer, or call fail("why") to refuse`},
	{found: keyword("raise"),
		hint: `raise does not exist: call fail("why") to stop with an error, e.g. fail("not enough money: the balance is %d" % self.balance)`},
	{found: keyword("with"),
		hint: "with does not exist (there are no files or locks to open): write its body without it"},
	{found: keyword("while"), absent: func(o *syntax.FileOptions) bool { return !o.While },
		hint: "while loops do not exist here: loop with for i in range(n): and break out when done"},
	{found: keyword("is"),
		hint: "is does not exist: compare with == and != (x == None, x != None)"},
	{found: keyword("del"),
		hint: "del does not exist: remove with d.pop(key), xs.pop(i) or xs.remove(x)"},
	{found: keyword("global"),
		hint: "global does not exist: keep what must last in the receiver's slots (self.total = self.total + 1)"},
	{found: keyword("nonlocal"),
		hint: "nonlocal does not exist: a nested function cannot rebind its parent's variables; share a list or dict and change it in place (acc.append(x), counts[k] = n)"},
	{found: keyword("yield"),
		hint: "yield does not exist: build a list and return it"},
	{found: func(ws []word, i int) bool { return ws[i].text == "**" && ws[i].afterOperand },
		hint: "** does not exist: multiply (x * x), or use math.pow(x, y), which answers a float"},
	{found: keyword(":="),
		hint: ":= does not exist: assign on a line of its own first"},
	{found: func(ws []word, i int) bool {
		return ws[i].text == "assert" && ws[i].first && i+1 < len(ws) && ws[i+1].line == ws[i].line && ws[i+1].text != "="
	}, hint: `assert does not exist in method code: write if not (cond): fail("why")`},
}

// undefinedHints say what to use for a name Python has and this dialect
// does not; they are given only when the error says the name is
// undefined, so a name the dialect gains stops getting one.
var undefinedHints = map[string]string{
	"sum":        "sum does not exist: add in a loop (total = 0, then for x in xs: total += x)",
	"isinstance": `isinstance does not exist: compare type(x) == "int" (or "string", "list", "dict", "float", "bool", "NoneType")`,
	"map":        "map does not exist: use a list comprehension ([f(x) for x in xs])",
	"filter":     "filter does not exist: use a list comprehension ([x for x in xs if x > 0])",
	"reduce":     "reduce does not exist: accumulate in a for loop",
	"round":      "round is math.round(x) here; it answers a float (int(math.round(x)) for an int)",
	"pow":        "pow is math.pow(x, y) here; it answers a float",
	"assert":     `assert does not exist in method code: write if not (cond): fail("why")`,
	"null":       "write None, True and False (not null, true, false)",
	"true":       "write None, True and False (not null, true, false)",
	"false":      "write None, True and False (not null, true, false)",
	"none":       "write None, True and False (not null, true, false)",
}

// exceptionNames are Python's exceptions, which a model raises or
// catches; none exists here.
var exceptionNames = []string{"Exception", "ValueError", "KeyError", "TypeError", "IndexError", "RuntimeError", "ZeroDivisionError", "AssertionError", "NotImplementedError", "ArithmeticError", "LookupError", "AttributeError"}

// runtimeHints follow errors that method code makes at run time, by the
// message Starlark gives.
var runtimeHints = []struct {
	match *regexp.Regexp
	hint  string
}{
	{regexp.MustCompile(`list has no \.sort field`), "lists have no sort method: xs = sorted(xs) (sorted(xs, key = f, reverse = True) work too)"},
	{regexp.MustCompile(`has no \.has_key field`), "has_key does not exist: write key in d"},
	{regexp.MustCompile(`string has no \.contains field`), `contains does not exist: write "a" in s`},
	{regexp.MustCompile(`has no \.(length|size|count) field`), "write len(x) for a length"},
	{regexp.MustCompile(`unknown binary op: (string \+ (int|float)|(int|float) \+ string)`), `a string and a number do not add: convert first ("total: " + str(n), or "total: %d" % n)`},
	{regexp.MustCompile(`string value is not iterable|got string, want iterable`), "strings are not iterable here: loop over s.elems() for characters, or s.split() for words"},
	{regexp.MustCompile(`sorted: unexpected keyword argument`), "sorted takes key = f and reverse = True only (no cmp)"},
}

var undefinedName = regexp.MustCompile(`undefined: ([A-Za-z_][A-Za-z0-9_]*)`)

// Hint says what to write instead of the Python habits that most likely
// caused err, the error that compiling, auditing or running method
// source src produced: one line per habit, each starting "hint", or ""
// when it recognises none. It is meant to follow err's own message,
// never to replace it. It is safe for concurrent use.
func Hint(src string, err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	var hs hints
	if _, perr := fileOptions.Parse("method.star", src, 0); perr != nil {
		hs.syntax(src, fileOptions, false)
	} else {
		hs.shape(src, msg)
	}
	hs.messages(msg)
	return hs.String()
}

// TestHint is Hint for a test, which is one expression that answers True
// when the method works: besides Hint's habits it recognises a test that
// starts with assert, a test written as statements (which answers None),
// and one that answers None. err is the test's error, or nil when the
// test ran and answered answer (nil if it answered nothing storable).
// It is safe for concurrent use.
func TestHint(expr string, answer image.Value, err error) string {
	var hs hints
	ws := words(expr)
	_, exprErr := evalOptions.ParseExpr("test", expr, 0)
	f, fileErr := evalOptions.Parse("test", expr, 0)
	switch {
	case len(ws) > 1 && ws[0].text == "assert" && ws[1].text != "=":
		rest := strings.TrimSpace(strings.TrimSpace(expr)[len("assert"):])
		hs.add(0, fmt.Sprintf("a test is the boolean expression alone: write %s, without assert", rest))
	case exprErr != nil && fileErr != nil:
		hs.syntax(expr, evalOptions, true)
	case exprErr != nil:
		hs.add(0, statementsHint(expr, f))
	case err == nil && answer == image.None:
		hs.add(0, fmt.Sprintf("the test answered None: a test must answer True when the method works; compare what the call answers (%s == expected), or check the state it leaves (%s == None and self.slot == expected)", strings.TrimSpace(expr), strings.TrimSpace(expr)))
	}
	if err != nil {
		hs.messages(err.Error())
	}
	return hs.String()
}

// statementsHint is the hint for a test written as statements (which
// parsed as such).
func statementsHint(expr string, f *syntax.File) string {
	if len(f.Stmts) == 1 {
		if a, ok := f.Stmts[0].(*syntax.AssignStmt); ok && a.Op == syntax.EQ {
			return fmt.Sprintf("= assigns; a test compares with ==: write %s == %s", source(expr, a.LHS), source(expr, a.RHS))
		}
	}
	return "a test is one expression that answers True when the method works, not statements: to check what a call leaves, join the steps with and (self.deposit(5) == None and self.balance == 15)"
}

// hints collects hints, each once, with the lines that gave rise to it.
type hints struct {
	order []string
	lines map[string][]int
}

func (hs *hints) add(line int, hint string) {
	// One hint a line, whatever source it quotes.
	hint = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(hint)
	if hs.lines == nil {
		hs.lines = map[string][]int{}
	}
	ls, seen := hs.lines[hint]
	if !seen {
		hs.order = append(hs.order, hint)
	}
	if line > 0 && !slices.Contains(ls, line) {
		ls = append(ls, line)
	}
	hs.lines[hint] = ls
}

// syntax adds the habits found in src, which does not parse in dialect.
func (hs *hints) syntax(src string, dialect *syntax.FileOptions, test bool) {
	ws := words(src)
	for _, h := range syntaxHabits {
		if h.absent != nil && !h.absent(dialect) {
			continue
		}
		for i := range ws {
			if h.found(ws, i) && !(test && ws[i].text == "assert") {
				hs.add(ws[i].line, h.hint)
			}
		}
	}
	if mixedIndent(src) {
		hs.add(0, "indent with spaces only, 4 per level: the source mixes tabs and spaces, and a tab counts as 8 columns here")
	}
}

// shape adds hints for method source that parses but has the wrong
// shape: no self, or helpers beside the method.
func (hs *hints) shape(src, msg string) {
	f, err := fileOptions.Parse("method.star", src, 0)
	if err != nil {
		return
	}
	var defs []*syntax.DefStmt
	for _, s := range f.Stmts {
		if d, ok := s.(*syntax.DefStmt); ok {
			defs = append(defs, d)
		}
	}
	if strings.Contains(msg, "first parameter must be self") {
		for _, d := range defs {
			if p, ok := firstParam(d); !ok || p.Name != "self" {
				hs.add(int(d.Def.Line), fmt.Sprintf("self, the object that received the message, comes first in every method: %s", withSelf(src, d)))
				break
			}
		}
	}
	if len(defs) > 1 && !strings.Contains(msg, "nest helpers") {
		// The method is the def that takes self; the others are helpers.
		main := defs[0]
		for _, d := range defs {
			if p, ok := firstParam(d); ok && p.Name == "self" {
				main = d
				break
			}
		}
		for _, d := range defs {
			if d != main {
				hs.add(int(d.Def.Line), fmt.Sprintf("only one function may stand at top level: define %s inside %s, indented under its def, and call it from there", d.Name.Name, main.Name.Name))
			}
		}
	}
}

// withSelf is d's header with self as its first parameter: instead of a
// first parameter named as other languages name the receiver, else
// before the others.
func withSelf(src string, d *syntax.DefStmt) string {
	params := []string{"self"}
	for i, p := range d.Params {
		if id, ok := p.(*syntax.Ident); ok && i == 0 && slices.Contains([]string{"this", "cls", "me", "obj"}, id.Name) {
			continue
		}
		params = append(params, source(src, p))
	}
	return fmt.Sprintf("def %s(%s):", d.Name.Name, strings.Join(params, ", "))
}

// messages adds the hints that err's message alone calls for.
func (hs *hints) messages(msg string) {
	for _, m := range undefinedName.FindAllStringSubmatch(msg, -1) {
		name := m[1]
		if isPredeclared(name) || starlark.Universe.Has(name) {
			continue
		}
		if h, ok := undefinedHints[name]; ok {
			hs.add(0, h)
		} else if slices.Contains(exceptionNames, name) {
			hs.add(0, fmt.Sprintf(`there are no exceptions (%s): call fail("why") to stop with an error, and check before acting instead of catching`, name))
		}
	}
	for _, r := range runtimeHints {
		if r.match.MatchString(msg) {
			hs.add(0, r.hint)
		}
	}
}

// String is the hints, one a line: "hint: ...", or "hint (line 2): ..."
// when it is known where the habit stands.
func (hs *hints) String() string {
	var b strings.Builder
	for _, h := range hs.order {
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		switch ls := hs.lines[h]; len(ls) {
		case 0:
			b.WriteString("hint: ")
		case 1:
			fmt.Fprintf(&b, "hint (line %d): ", ls[0])
		default:
			s := make([]string, len(ls))
			for i, l := range ls {
				s[i] = fmt.Sprint(l)
			}
			fmt.Fprintf(&b, "hint (lines %s): ", strings.Join(s, ", "))
		}
		b.WriteString(h)
	}
	return b.String()
}

// mixedIndent reports whether src indents with both tabs and spaces.
func mixedIndent(src string) bool {
	var tabs, spaces bool
	for line := range strings.SplitSeq(src, "\n") {
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		if indent == line {
			continue // blank
		}
		tabs = tabs || strings.Contains(indent, "\t")
		spaces = spaces || strings.Contains(indent, " ")
	}
	return tabs && spaces
}

// word is an identifier, keyword or operator of source, outside strings
// and comments.
type word struct {
	text string
	line int
	// first says it starts its line.
	first bool
	// prefix says it is an identifier directly followed by a quote: a
	// string's prefix (r, b, or Python's f).
	prefix bool
	// afterOperand says it follows an operand (a name, a literal, a
	// closing bracket) rather than an operator or an opening bracket.
	afterOperand bool
}

// words splits src as far as the habits need: strings, numbers and
// comments are skipped (a string or number counts as an operand).
func words(src string) []word {
	var ws []word
	line, first, operand := 1, true, false
	add := func(w word) {
		w.line, w.first, w.afterOperand = line, first, operand
		ws = append(ws, w)
		first = false
	}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			line, first = line+1, true
			i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\\':
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'':
			var n int
			i, n = skipString(src, i)
			line += n
			first, operand = false, true
		case isIdentByte(c) && (c < '0' || c > '9'):
			j := i
			for j < len(src) && isIdentByte(src[j]) {
				j++
			}
			add(word{text: src[i:j], prefix: j < len(src) && (src[j] == '"' || src[j] == '\'')})
			operand = true
			i = j
		case c >= '0' && c <= '9':
			for i < len(src) && (isIdentByte(src[i]) || src[i] == '.') {
				i++
			}
			first, operand = false, true
		default:
			op := src[i : i+1]
			if i+1 < len(src) && slices.Contains([]string{"**", ":="}, src[i:i+2]) {
				op = src[i : i+2]
			}
			add(word{text: op})
			operand = op == ")" || op == "]" || op == "}"
			i += len(op)
		}
	}
	return ws
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= utf8.RuneSelf
}

// skipString returns the index after the string literal starting at i,
// and how many newlines it spans. An unterminated one ends at the end of
// its line (a triple-quoted one at the end of src).
func skipString(src string, i int) (end, newlines int) {
	q := src[i : i+1]
	if strings.HasPrefix(src[i:], q+q+q) {
		q = q + q + q
	}
	for j := i + len(q); j < len(src); j++ {
		switch {
		case src[j] == '\\':
			if j+1 < len(src) && src[j+1] == '\n' {
				newlines++
			}
			j++
		case strings.HasPrefix(src[j:], q):
			return j + len(q), newlines
		case src[j] == '\n' && len(q) == 1:
			return j, newlines
		case src[j] == '\n':
			newlines++
		}
	}
	return len(src), newlines
}

// source is the text of n in src, which it was parsed from.
func source(src string, n syntax.Node) string {
	start, end := n.Span()
	return src[offset(src, start):offset(src, end)]
}

// offset is the byte offset of p in src.
func offset(src string, p syntax.Position) int {
	off := 0
	for l := int32(1); l < p.Line; l++ {
		nl := strings.IndexByte(src[off:], '\n')
		if nl < 0 {
			return len(src)
		}
		off += nl + 1
	}
	for c := int32(1); c < p.Col && off < len(src) && src[off] != '\n'; c++ {
		_, size := utf8.DecodeRuneInString(src[off:])
		off += size
	}
	return off
}

// Comparison is a comparison (A == B, !=, <, <=, >, >=, in, not in)
// that answered False, with what each side was.
type Comparison struct {
	Op          string
	Left, Right Side
}

// Side is one side of a comparison.
type Side struct {
	// Source is the side as written; Repr its value, printed as repr,
	// cut at maxSideRepr bytes.
	Source, Repr string
	// Constant says the side is a literal, or a container of literals:
	// what a test expects, most likely.
	Constant bool
	// Call says the side is a call: its value is what the call answered.
	Call bool
}

// maxSideRepr bounds the repr of one side of a comparison.
const maxSideRepr = 300

// comparisonOps are the operators a Comparison reports.
var comparisonOps = []syntax.Token{syntax.EQL, syntax.NEQ, syntax.LT, syntax.LE, syntax.GT, syntax.GE, syntax.IN, syntax.NOT_IN}

// EvalTest is Eval for a test expression that may be a comparison, or
// comparisons joined by and. When the comparison that made it answer
// False is one, it returns that comparison with the value of each side:
// the sides are evaluated once each, left then right, in the one
// execution that evaluates the test, and compared as the expression
// would compare them, so what a side changes happens once, exactly as
// when the expression runs whole, and errors have the same positions.
// Code that is not an expression, or has no comparison, is run by Eval,
// except that a test is one expression: statements answer None, even
// when the last is an expression.
func (vm *VM) EvalTest(ctx context.Context, tx *image.Tx, code string, globals map[string]image.Value) (Result, *Comparison, error) {
	expr, perr := evalOptions.ParseExpr("<input>", code, 0)
	if perr != nil || !hasComparison(expr) {
		res, err := vm.eval(ctx, tx, nil, code, globals, perr == nil)
		freeAfter(err)
		return res, nil, err
	}
	res, cmp, err := vm.evalTest(ctx, tx, code, expr, globals)
	freeAfter(err)
	return res, cmp, err
}

func (vm *VM) evalTest(ctx context.Context, tx *image.Tx, code string, expr syntax.Expr, globals map[string]image.Value) (Result, *Comparison, error) {
	ex, err := vm.start(ctx, tx)
	if err != nil {
		return Result{}, nil, err
	}
	defer ex.stop()
	env, err := vm.environment(ex, globals)
	if err != nil {
		return Result{}, nil, err
	}
	t := &tester{ex: ex, code: code, env: env}
	v, err := t.eval(expr)
	res, err := ex.finish(v, err)
	if err != nil {
		return res, nil, err
	}
	return res, t.failed, nil
}

// tester evaluates a test, comparisons side by side.
type tester struct {
	ex     *execution
	code   string
	env    starlark.StringDict
	failed *Comparison
}

func hasComparison(e syntax.Expr) bool {
	switch e := unparen(e).(type) {
	case *syntax.BinaryExpr:
		return slices.Contains(comparisonOps, e.Op) || e.Op == syntax.AND && (hasComparison(e.X) || hasComparison(e.Y))
	}
	return false
}

// eval evaluates e as Starlark does, recording the comparison that
// answered False, if it decided the answer.
func (t *tester) eval(e syntax.Expr) (starlark.Value, error) {
	b, ok := unparen(e).(*syntax.BinaryExpr)
	switch {
	case ok && b.Op == syntax.AND:
		x, err := t.eval(b.X)
		if err != nil || !x.Truth() {
			return x, err
		}
		t.failed = nil
		return t.eval(b.Y)
	case ok && slices.Contains(comparisonOps, b.Op):
		return t.compare(b)
	}
	return starlark.EvalExprOptions(evalOptions, t.ex.thread, guardExpr(e), t.env)
}

// The names the two sides' values are compared under: no source can
// name them.
const (
	leftName  = "$left"
	rightName = "$right"
)

func (t *tester) compare(b *syntax.BinaryExpr) (starlark.Value, error) {
	x, err := starlark.EvalExprOptions(evalOptions, t.ex.thread, guardExpr(b.X), t.env)
	if err != nil {
		return nil, err
	}
	y, err := starlark.EvalExprOptions(evalOptions, t.ex.thread, guardExpr(b.Y), t.env)
	if err != nil {
		return nil, err
	}
	// Compared by the interpreter, at the operator's position, so the
	// verdict and any error are the expression's own.
	t.env[leftName], t.env[rightName] = x, y
	defer delete(t.env, leftName)
	defer delete(t.env, rightName)
	op := &syntax.BinaryExpr{OpPos: b.OpPos, Op: b.Op,
		X: &syntax.Ident{NamePos: syntax.Start(b.X), Name: leftName},
		Y: &syntax.Ident{NamePos: syntax.Start(b.Y), Name: rightName}}
	v, err := starlark.EvalExprOptions(evalOptions, t.ex.thread, op, t.env)
	if err != nil || v.Truth() {
		return v, err
	}
	t.failed = &Comparison{Op: b.Op.String(), Left: t.side(b.X, x), Right: t.side(b.Y, y)}
	return v, nil
}

func (t *tester) side(e syntax.Expr, v starlark.Value) Side {
	s := Side{Source: source(t.code, e), Constant: isConstant(e)}
	_, s.Call = unparen(e).(*syntax.CallExpr)
	s.Repr = shortRepr(t.ex, v)
	return s
}

// shortRepr is v's repr, cut at maxSideRepr bytes.
func shortRepr(ex *execution, v starlark.Value) string {
	if str, ok := v.(starlark.String); ok && len(str) > maxSideRepr {
		cut := maxSideRepr
		for cut > 0 && !utf8.RuneStart(str[cut]) {
			cut--
		}
		return fmt.Sprintf("%s… (%d bytes in all)", syntax.Quote(string(str[:cut]), false), len(str))
	}
	p := &printer{ex: ex, max: maxSideRepr}
	if err := p.value(v); err != nil {
		// Too big, or too deep, to print whole: the start says enough.
		if len(p.buf) == 0 {
			return fmt.Sprintf("… (a %s too big to show)", v.Type())
		}
		return string(p.buf) + "…"
	}
	return string(p.buf)
}
