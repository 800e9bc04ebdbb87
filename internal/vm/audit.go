package vm

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Default size limits of audited source.
const (
	DefaultAuditMaxBytes = 16 << 10
	DefaultAuditMaxLines = 400
)

// maxViolations bounds the violations an AuditError lists; the rest are
// counted in a last one.
const maxViolations = 50

// Violation is one reason the audit refuses source. Line and Col are
// 1-based; Line 0 means the source as a whole, Col 0 the whole line.
type Violation struct {
	Line, Col int
	Msg       string
}

// String is the violation as "line 3: msg", "line 3, col 5: msg", or just
// msg when it concerns the whole source.
func (v Violation) String() string {
	switch {
	case v.Line <= 0:
		return v.Msg
	case v.Col <= 0:
		return fmt.Sprintf("line %d: %s", v.Line, v.Msg)
	}
	return fmt.Sprintf("line %d, col %d: %s", v.Line, v.Col, v.Msg)
}

// AuditOptions describe the method and the call it must serve.
type AuditOptions struct {
	// Selector is the name the function must have.
	Selector string
	// Args is how many positional arguments the call passes, self
	// excluded; negative means unknown, and skips the checks that need it
	// (too many positional arguments, required parameters left unfilled,
	// a parameter passed both ways).
	Args int
	// Kwargs are the keyword argument names the call passes; each must
	// name a parameter, or the function must take **kwargs.
	Kwargs []string
	// MaxBytes bounds the source's size; 0 means DefaultAuditMaxBytes.
	MaxBytes int
	// MaxLines bounds its lines; 0 means DefaultAuditMaxLines.
	MaxLines int
	// Forbid names built-ins this source may not use, with why: the
	// cycle forbids method(), so generated code cannot make code that
	// the guardian never saw.
	Forbid map[string]string
}

func (o AuditOptions) withDefaults() AuditOptions {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultAuditMaxBytes
	}
	if o.MaxLines <= 0 {
		o.MaxLines = DefaultAuditMaxLines
	}
	return o
}

// AuditError is returned by Audit when it refuses source: every violation
// found, in source order (past maxViolations, a last one counts the rest).
type AuditError struct {
	Selector   string
	Violations []Violation
}

func (e *AuditError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "guardian: method %s refused:", e.Selector)
	for _, v := range e.Violations {
		b.WriteString("\n  ")
		b.WriteString(v.String())
	}
	return b.String()
}

// Audit checks method source without running any of it, and reports every
// violation it finds (a syntax error stops the parse, so it is the only
// one reported from the parser; source over MaxBytes is not parsed at
// all). The source must parse in method code's dialect; define exactly
// one function, named opts.Selector, whose first parameter is self and
// whose parameters accept the call opts describes; have nothing else at
// top level but a docstring; use no load; give its parameters constant
// defaults; use only names that resolve to a parameter, a local, a
// built-in method code has, or a Starlark universal; and keep within the
// size limits. Finally, source that passed
// everything is compiled as the VM compiles it (which evaluates only the
// constant defaults), so source Audit accepts is source the VM can call.
//
// Audit returns nil or an *AuditError. It is safe for concurrent use.
func Audit(source string, opts AuditOptions) error {
	opts = opts.withDefaults()
	a := &auditor{opts: opts}
	a.checkSelector()
	if !a.checkSize(source) {
		// Parsing what is too big already is work for nothing, and
		// reports a violation per statement: megabytes of them.
		return a.result()
	}
	f, err := fileOptions.Parse(opts.Selector+".star", source, 0)
	if err != nil {
		a.addError(err)
		return a.result()
	}
	if def := a.checkTopLevel(f); def != nil {
		a.checkDef(def)
		a.checkArity(def)
		a.checkNames(f, def)
	}
	if len(a.violations) == 0 {
		// What the static checks cannot see (a constant default that
		// fails to evaluate, such as an unhashable dict key) the
		// compiler does.
		if _, err := (&VM{}).compile(source, opts.Selector); err != nil {
			a.addError(fmt.Errorf("the function cannot be compiled: %w", err))
		}
	}
	return a.result()
}

type auditor struct {
	opts       AuditOptions
	violations []Violation
	loads      map[syntax.Position]bool // load statements already reported
}

func (a *auditor) add(pos syntax.Position, format string, args ...any) {
	a.violations = append(a.violations, Violation{Line: int(pos.Line), Col: int(pos.Col), Msg: fmt.Sprintf(format, args...)})
}

// addLine reports a violation of a whole statement or definition.
func (a *auditor) addLine(pos syntax.Position, format string, args ...any) {
	a.add(syntax.MakePosition(nil, pos.Line, 0), format, args...)
}

// addError reports a parser, resolver or compiler error at its position.
func (a *auditor) addError(err error) {
	var se syntax.Error
	var rl resolve.ErrorList
	var ee *starlark.EvalError
	switch {
	case errors.As(err, &se):
		a.add(se.Pos, "%s", se.Msg)
	case errors.As(err, &rl):
		for _, re := range rl {
			a.add(re.Pos, "%s", re.Msg)
		}
	case errors.As(err, &ee) && len(ee.CallStack) > 0:
		a.add(ee.CallStack.At(0).Pos, "%s", err)
	default:
		a.violations = append(a.violations, Violation{Msg: err.Error()})
	}
}

func (a *auditor) result() error {
	if len(a.violations) == 0 {
		return nil
	}
	slices.SortStableFunc(a.violations, func(x, y Violation) int {
		if x.Line != y.Line {
			return x.Line - y.Line
		}
		return x.Col - y.Col
	})
	if n := len(a.violations) - maxViolations; n > 0 {
		// A violation per statement of a long one-liner (x;x;x...) is
		// no clearer than the first few.
		a.violations = append(a.violations[:maxViolations:maxViolations], Violation{Msg: fmt.Sprintf("… and %d more violations", n)})
	}
	return &AuditError{Selector: a.opts.Selector, Violations: a.violations}
}

// IsSelector reports whether name can name a function, and so a method:
// a Starlark identifier, not a keyword (if, lambda, ...).
func IsSelector(name string) bool {
	e, err := fileOptions.ParseExpr("selector", name, 0)
	id, ok := e.(*syntax.Ident)
	return err == nil && ok && id.Name == name
}

func (a *auditor) checkSelector() {
	if IsSelector(a.opts.Selector) {
		return
	}
	a.violations = append(a.violations, Violation{Msg: fmt.Sprintf("the selector %q is not a Starlark identifier, so no function can be named like it", a.opts.Selector)})
}

// checkSize reports source over the limits; it returns false when the
// source is too big to audit further.
func (a *auditor) checkSize(source string) bool {
	n := len(source)
	if n > a.opts.MaxBytes {
		a.violations = append(a.violations, Violation{Msg: fmt.Sprintf("the source is %d bytes; at most %d are allowed", n, a.opts.MaxBytes)})
	}
	lines := strings.Count(source, "\n")
	if source != "" && !strings.HasSuffix(source, "\n") {
		lines++
	}
	if lines > a.opts.MaxLines {
		a.violations = append(a.violations, Violation{Msg: fmt.Sprintf("the source is %d lines long; at most %d are allowed", lines, a.opts.MaxLines)})
	}
	return n <= a.opts.MaxBytes
}

// checkTopLevel reports every top-level statement but a leading docstring
// and one def, and returns the def to audit further: the one named like
// the selector, else the first.
func (a *auditor) checkTopLevel(f *syntax.File) *syntax.DefStmt {
	var defs []*syntax.DefStmt
	for i, stmt := range f.Stmts {
		switch s := stmt.(type) {
		case *syntax.DefStmt:
			defs = append(defs, s)
		case *syntax.LoadStmt:
			a.addLoad(s)
		case *syntax.ExprStmt:
			if lit, ok := s.X.(*syntax.Literal); ok && lit.Token == syntax.STRING && i == 0 {
				continue // a docstring
			}
			a.addLine(syntax.Start(stmt), "%s at top level: only a docstring and one def may stand there (move the code into the function)", statementKind(stmt))
		default:
			a.addLine(syntax.Start(stmt), "%s at top level: only a docstring and one def may stand there (move the code into the function)", statementKind(stmt))
		}
	}
	if len(defs) == 0 {
		a.violations = append(a.violations, Violation{Msg: fmt.Sprintf("the source defines no function (want def %s(self, ...))", a.opts.Selector)})
		return nil
	}
	main := defs[0]
	for _, d := range defs {
		if d.Name.Name == a.opts.Selector {
			main = d
			break
		}
	}
	for _, d := range defs {
		if d != main {
			a.addLine(d.Def, "a second function, %s: the source must define exactly one function, %s (nest helpers inside it)", d.Name.Name, a.opts.Selector)
		}
	}
	return main
}

func statementKind(stmt syntax.Stmt) string {
	switch s := stmt.(type) {
	case *syntax.IfStmt:
		return "an if statement"
	case *syntax.ForStmt:
		return "a for loop"
	case *syntax.WhileStmt:
		return "a while loop"
	case *syntax.AssignStmt:
		return "an assignment"
	case *syntax.ReturnStmt:
		return "a return statement"
	case *syntax.BranchStmt:
		return "a " + s.Token.String() + " statement"
	}
	return "an expression"
}

func (a *auditor) addLoad(l *syntax.LoadStmt) {
	if a.loads == nil {
		a.loads = map[syntax.Position]bool{}
	}
	a.loads[l.Load] = true
	a.add(l.Load, "load is not available to method code")
}

// checkDef checks the function's name, its self parameter, its defaults,
// and load statements inside it.
func (a *auditor) checkDef(def *syntax.DefStmt) {
	if def.Name.Name != a.opts.Selector {
		a.add(def.Name.NamePos, "the function is named %s; it must be named like its selector, %s", def.Name.Name, a.opts.Selector)
	}
	if p, ok := firstParam(def); !ok || p.Name != "self" {
		a.addLine(def.Def, "the first parameter must be self")
	}
	for _, p := range def.Params {
		// As CheckMethod: defaults are evaluated when the method is
		// compiled, outside any execution's limits.
		if b, ok := p.(*syntax.BinaryExpr); ok && b.Op == syntax.EQ && !isConstant(b.Y) {
			a.add(syntax.Start(b.Y), "the default of parameter %s must be a constant (None, a number, a string, or a list, tuple or dict of them)", b.X.(*syntax.Ident).Name)
		}
	}
	syntax.Walk(def, func(n syntax.Node) bool {
		if l, ok := n.(*syntax.LoadStmt); ok {
			a.addLoad(l)
		}
		return true
	})
}

// firstParam is the function's first parameter if it is a plain name.
func firstParam(def *syntax.DefStmt) (*syntax.Ident, bool) {
	if len(def.Params) == 0 {
		return nil, false
	}
	id, ok := def.Params[0].(*syntax.Ident)
	return id, ok
}

// param is a named parameter after self.
type param struct {
	name     string
	required bool
	pos      syntax.Position
}

// signature is a function's parameters after self.
type signature struct {
	positional     []param // may be passed by position or keyword
	kwonly         []param // after * or *args
	varargs, varkw bool
}

func signatureOf(params []syntax.Expr) signature {
	var sig signature
	star := false
	for _, p := range params {
		var pm param
		switch p := p.(type) {
		case *syntax.Ident:
			pm = param{name: p.Name, required: true, pos: p.NamePos}
		case *syntax.BinaryExpr:
			id := p.X.(*syntax.Ident)
			pm = param{name: id.Name, pos: id.NamePos}
		case *syntax.UnaryExpr:
			if p.Op == syntax.STARSTAR {
				sig.varkw = true
			} else {
				star = true
				sig.varargs = sig.varargs || p.X != nil
			}
			continue
		}
		if star {
			sig.kwonly = append(sig.kwonly, pm)
		} else {
			sig.positional = append(sig.positional, pm)
		}
	}
	return sig
}

// checkArity checks that the function accepts the call: enough positional
// parameters, every required one filled, every keyword accepted. It needs
// a plain first parameter to stand for self.
func (a *auditor) checkArity(def *syntax.DefStmt) {
	self, ok := firstParam(def)
	if !ok {
		return
	}
	sig := signatureOf(def.Params[1:])
	kw := map[string]bool{}
	for _, name := range a.opts.Kwargs {
		kw[name] = true
	}
	if n := len(sig.positional); a.opts.Args > n && !sig.varargs {
		a.addLine(def.Def, "%s takes %s after self, but the call passes %d (add parameters, or *args)", def.Name.Name, plural(n, "positional argument"), a.opts.Args)
	}
	a.checkKwargs(def, self.Name, sig)
	if a.opts.Args < 0 {
		return
	}
	for i, p := range sig.positional {
		switch {
		case i < a.opts.Args && kw[p.name]:
			a.add(p.pos, "the call passes %s both by position and by keyword", p.name)
		case i >= a.opts.Args && p.required && !kw[p.name]:
			a.add(p.pos, "parameter %s is required, but the call (%s after self%s) does not fill it (give it a default, or remove it)", p.name, plural(a.opts.Args, "positional argument"), a.describeKwargs())
		}
	}
	for _, p := range sig.kwonly {
		if p.required && !kw[p.name] {
			a.add(p.pos, "keyword-only parameter %s is required, but the call does not pass it by keyword (give it a default, or remove it)", p.name)
		}
	}
}

// checkKwargs checks that every keyword argument names a parameter, or
// the function takes **kwargs.
func (a *auditor) checkKwargs(def *syntax.DefStmt, self string, sig signature) {
	names := map[string]bool{}
	for _, p := range slices.Concat(sig.positional, sig.kwonly) {
		names[p.name] = true
	}
	seen := map[string]bool{}
	for _, name := range a.opts.Kwargs {
		switch {
		case seen[name]:
		case name == self:
			a.addLine(def.Def, "the call passes keyword argument %s, which is the receiver's parameter", name)
		case !names[name] && !sig.varkw:
			a.addLine(def.Def, "the call passes keyword argument %s, which %s does not accept (add a parameter %s, or **kwargs)", name, def.Name.Name, name)
		}
		seen[name] = true
	}
}

func (a *auditor) describeKwargs() string {
	if len(a.opts.Kwargs) == 0 {
		return ""
	}
	return " and keywords " + strings.Join(a.opts.Kwargs, ", ")
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// checkNames resolves the function as the VM would, with the built-ins
// method code has and Starlark's universe, reporting every name that
// resolves to nothing (and anything else the resolver refuses). The
// function is resolved alone: whatever else stands at top level is
// refused already, and must not make its names look defined.
func (a *auditor) checkNames(f *syntax.File, def *syntax.DefStmt) {
	alone := &syntax.File{Path: f.Path, Stmts: []syntax.Stmt{def}, Options: f.Options}
	err := resolve.File(alone, isBuiltin, starlark.Universe.Has)
	defer a.checkForbidden(def)
	var rl resolve.ErrorList
	if !errors.As(err, &rl) {
		if err != nil {
			a.addError(err)
		}
		return
	}
	for _, re := range rl {
		if !a.loads[re.Pos] { // reported as a load already
			a.add(re.Pos, "%s", re.Msg)
		}
	}
}

// checkForbidden reports each use of a forbidden built-in (a parameter
// or local of the same name is the code's own, and allowed).
func (a *auditor) checkForbidden(def *syntax.DefStmt) {
	if len(a.opts.Forbid) == 0 {
		return
	}
	syntax.Walk(def, func(n syntax.Node) bool {
		id, ok := n.(*syntax.Ident)
		if !ok {
			return true
		}
		why, forbidden := a.opts.Forbid[id.Name]
		if b, resolved := id.Binding.(*resolve.Binding); forbidden && resolved && (b.Scope == resolve.Predeclared || b.Scope == resolve.Universal) {
			a.add(id.NamePos, "%s may not be used here: %s", id.Name, why)
		}
		return true
	})
}
