package vm

import (
	"strconv"

	"go.starlark.net/syntax"
)

// Guarding. Starlark has no accounting of what its operations allocate
// (its only guard refuses repetitions of more than 2^30 elements), and
// one step of `[0] * 100000000` or `s.replace("a", s)` allocates
// gigabytes before any watchdog can look. So the VM rewrites parsed code,
// before it is compiled, so that the operations that can allocate much
// more than their operands hold call guarded built-ins instead:
//
//	x * y, x + y, x % y, x | y   $*(x, y), $+(x, y), ...
//	x *= y, x %= y               x = $*(x, y), x = $%(x, y)
//	x += y, x |= y               x += $+=(x, y), x |= $|=(x, y)
//	x.join, x.replace, ...       $.join(x), $.replace(x), ...
//	(x, y)                       $()(x, y)   (nesting.go)
//	x[lo:hi:step]                $[:](x, 7, lo, hi, step)   (slice.go)
//	x[k], k not a literal        $[](x, k)                  (index.go)
//	x.name(args)                 $call(x, "name")(args)     (object.go)
//
// The guards estimate the result's size from the operands, reserve it
// against the execution's and the process's memory budgets (budget.go)
// and only then do the operation as Starlark would, with its errors. The
// names cannot be written in source, so code cannot reach or shadow them.
// The built-ins that materialise iterables or print (list, str, ...) are
// shadowed by guarded ones of the same names (universe.go).
//
// Operations that cannot amplify are left alone: a + with a number
// literal on one side (n + 1) or with literals on both, x % or x | with a
// number literal, and x * with number literals on both sides.
//
// An augmented assignment's target is read once more to estimate; when
// reading it could have side effects (a call in the index, say), its
// parts are first assigned to temporaries "$t0", "$t1", ..., so that each
// is still evaluated once, in the same order.

// Names of the guarded operators.
const (
	guardPlus    = "$+"
	guardStar    = "$*"
	guardPercent = "$%"
	guardPipe    = "$|"
	guardAddTo   = "$+="
	guardOrTo    = "$|="
	guardMethod  = "$." // + the method's name; guardTuple is "$()"
	guardCallee  = "$call"
	tempPrefix   = "$t"
)

// rewriter rewrites one file or expression.
type rewriter struct{ temps int }

// guardFile rewrites f in place.
func guardFile(f *syntax.File) {
	r := &rewriter{}
	f.Stmts = r.stmts(f.Stmts)
}

// guardExpr rewrites e, returning the expression to compile.
func guardExpr(e syntax.Expr) syntax.Expr {
	return (&rewriter{}).expr(e)
}

func (r *rewriter) stmts(list []syntax.Stmt) []syntax.Stmt {
	if list == nil {
		// An if's missing else stays nil: syntax.IfStmt.Span reads an
		// empty one as the body that ends the statement.
		return nil
	}
	out := make([]syntax.Stmt, 0, len(list))
	for _, s := range list {
		out = append(out, r.stmt(s)...)
	}
	return out
}

func (r *rewriter) stmt(s syntax.Stmt) []syntax.Stmt {
	switch s := s.(type) {
	case *syntax.AssignStmt:
		if s.Op != syntax.EQ {
			return r.augmented(s)
		}
		s.LHS = r.target(s.LHS)
		s.RHS = r.expr(s.RHS)
	case *syntax.DefStmt:
		r.params(s.Params)
		s.Body = r.stmts(s.Body)
		s.Body = checkVarargs(s)
	case *syntax.ExprStmt:
		s.X = r.expr(s.X)
	case *syntax.ForStmt:
		s.Vars = r.target(s.Vars)
		s.X = r.expr(s.X)
		s.Body = r.stmts(s.Body)
	case *syntax.WhileStmt:
		s.Cond = r.expr(s.Cond)
		s.Body = r.stmts(s.Body)
	case *syntax.IfStmt:
		s.Cond = r.expr(s.Cond)
		s.True = r.stmts(s.True)
		s.False = r.stmts(s.False)
	case *syntax.ReturnStmt:
		s.Result = r.expr(s.Result)
	}
	return []syntax.Stmt{s}
}

// checkVarargs makes a def with *args check the tuple Starlark packs for
// it, as a display's is (nesting.go): args = $()(*args), first in the
// body (after a docstring).
func checkVarargs(def *syntax.DefStmt) []syntax.Stmt {
	for _, p := range def.Params {
		u, ok := p.(*syntax.UnaryExpr)
		if !ok || u.Op != syntax.STAR || u.X == nil {
			continue
		}
		name := u.X.(*syntax.Ident)
		at := def.Def
		check := &syntax.AssignStmt{OpPos: at, Op: syntax.EQ,
			LHS: &syntax.Ident{NamePos: at, Name: name.Name},
			RHS: guardCall(guardTuple, at, &syntax.UnaryExpr{OpPos: at, Op: syntax.STAR, X: &syntax.Ident{NamePos: at, Name: name.Name}})}
		body := def.Body
		i := 0
		if len(body) > 0 {
			if e, ok := body[0].(*syntax.ExprStmt); ok {
				if _, ok := e.X.(*syntax.Literal); ok {
					i = 1
				}
			}
		}
		return append(body[:i:i], append([]syntax.Stmt{check}, body[i:]...)...)
	}
	return def.Body
}

// params rewrites parameters' default values.
func (r *rewriter) params(params []syntax.Expr) {
	for _, p := range params {
		if b, ok := p.(*syntax.BinaryExpr); ok && b.Op == syntax.EQ {
			b.Y = r.expr(b.Y)
		}
	}
}

// target rewrites the expressions inside an assignment's target, not the
// target itself.
func (r *rewriter) target(e syntax.Expr) syntax.Expr {
	switch e := e.(type) {
	case *syntax.IndexExpr:
		e.X = r.expr(e.X)
		e.Y = r.expr(e.Y)
	case *syntax.DotExpr:
		e.X = r.expr(e.X)
	case *syntax.ParenExpr:
		e.X = r.target(e.X)
	case *syntax.TupleExpr:
		for i := range e.List {
			e.List[i] = r.target(e.List[i])
		}
	case *syntax.ListExpr:
		for i := range e.List {
			e.List[i] = r.target(e.List[i])
		}
	}
	return e
}

// augmented rewrites x op= y.
func (r *rewriter) augmented(s *syntax.AssignStmt) []syntax.Stmt {
	switch unparen(s.LHS).(type) {
	case *syntax.Ident, *syntax.IndexExpr, *syntax.DotExpr:
	default:
		// Not a target Starlark allows here (x[i:j] += y, say): left as
		// it is, for the resolver to refuse.
		return []syntax.Stmt{s}
	}
	s.LHS = r.target(s.LHS)
	s.RHS = r.expr(s.RHS)
	op := s.Op - syntax.PLUS_EQ + syntax.PLUS
	name := binaryGuard(op, s.LHS, s.RHS)
	if name == "" {
		return []syntax.Stmt{s}
	}
	pre := r.hoist(s)
	read := clone(s.LHS)
	switch op {
	case syntax.PLUS:
		// += and |= change a list or dict in place: keep Starlark's
		// operation, after a guard that only checks.
		s.RHS = guardCall(guardAddTo, s.OpPos, read, s.RHS)
	case syntax.PIPE:
		s.RHS = guardCall(guardOrTo, s.OpPos, read, s.RHS)
	default:
		s.Op = syntax.EQ
		s.RHS = guardCall(name, s.OpPos, read, s.RHS)
	}
	return append(pre, s)
}

// hoist assigns the parts of s's target that reading could change
// anything by evaluating twice to temporaries, and returns those
// assignments.
func (r *rewriter) hoist(s *syntax.AssignStmt) []syntax.Stmt {
	var pre []syntax.Stmt
	temp := func(e syntax.Expr) syntax.Expr {
		start, _ := e.Span()
		id := &syntax.Ident{NamePos: start, Name: tempPrefix + strconv.Itoa(r.temps)}
		r.temps++
		pre = append(pre, &syntax.AssignStmt{OpPos: start, Op: syntax.EQ, LHS: id, RHS: e})
		return clone(id)
	}
	// Both parts of an index, in order, if either needs it: the second
	// could change what the first names.
	switch lhs := unparen(s.LHS).(type) {
	case *syntax.IndexExpr:
		if !pure(lhs.X) || !pure(lhs.Y) {
			lhs.X = temp(lhs.X)
			lhs.Y = temp(lhs.Y)
		}
	case *syntax.DotExpr:
		if !pure(lhs.X) {
			lhs.X = temp(lhs.X)
		}
	}
	return pre
}

// pure reports whether evaluating e twice does what evaluating it once
// does: names, literals, and attributes and elements of them.
func pure(e syntax.Expr) bool {
	switch e := e.(type) {
	case *syntax.Ident, *syntax.Literal:
		return true
	case *syntax.ParenExpr:
		return pure(e.X)
	case *syntax.DotExpr:
		return pure(e.X)
	case *syntax.IndexExpr:
		return pure(e.X) && pure(e.Y)
	}
	return false
}

// clone copies a pure expression, so that no node stands twice in the
// tree.
func clone(e syntax.Expr) syntax.Expr {
	switch e := e.(type) {
	case *syntax.Ident:
		c := *e
		return &c
	case *syntax.Literal:
		c := *e
		return &c
	case *syntax.ParenExpr:
		c := *e
		c.X = clone(e.X)
		return &c
	case *syntax.DotExpr:
		c := *e
		c.X = clone(e.X)
		c.Name = clone(e.Name).(*syntax.Ident)
		return &c
	case *syntax.IndexExpr:
		c := *e
		c.X, c.Y = clone(e.X), clone(e.Y)
		return &c
	}
	panic("vm: clone of an impure expression") // hoist leaves none
}

func unparen(e syntax.Expr) syntax.Expr {
	for {
		p, ok := e.(*syntax.ParenExpr)
		if !ok {
			return e
		}
		e = p.X
	}
}

func (r *rewriter) exprs(list []syntax.Expr) {
	for i := range list {
		list[i] = r.expr(list[i])
	}
}

// expr rewrites e and the expressions in it.
func (r *rewriter) expr(e syntax.Expr) syntax.Expr {
	switch e := e.(type) {
	case *syntax.BinaryExpr:
		e.X = r.expr(e.X)
		e.Y = r.expr(e.Y)
		if name := binaryGuard(e.Op, e.X, e.Y); name != "" {
			return guardCall(name, e.OpPos, e.X, e.Y)
		}
	case *syntax.DotExpr:
		e.X = r.expr(e.X)
		if guardedMethods[e.Name.Name] {
			return guardCall(guardMethod+e.Name.Name, e.Dot, e.X)
		}
	case *syntax.CallExpr:
		if dot, ok := e.Fn.(*syntax.DotExpr); ok {
			// A call of x.name is a send: a name x does not understand is
			// a message for its doesNotUnderstand handler, where reading
			// it is an error (callee).
			name := &syntax.Literal{Token: syntax.STRING, TokenPos: dot.NamePos, Raw: strconv.Quote(dot.Name.Name), Value: dot.Name.Name}
			// The call still spans its source from the receiver on; its
			// errors point at the dot, as a read's do.
			start, _ := dot.X.Span()
			e.Fn = &syntax.CallExpr{Fn: &syntax.Ident{NamePos: start, Name: guardCallee}, Lparen: dot.Dot, Args: []syntax.Expr{r.expr(dot.X), name}, Rparen: dot.Dot}
		} else {
			e.Fn = r.expr(e.Fn)
		}
		for i, a := range e.Args {
			if kw, ok := a.(*syntax.BinaryExpr); ok && kw.Op == syntax.EQ {
				kw.Y = r.expr(kw.Y)
			} else {
				e.Args[i] = r.expr(a)
			}
		}
	case *syntax.UnaryExpr:
		if e.X != nil {
			e.X = r.expr(e.X)
		}
	case *syntax.ParenExpr:
		e.X = r.expr(e.X)
	case *syntax.CondExpr:
		e.Cond, e.True, e.False = r.expr(e.Cond), r.expr(e.True), r.expr(e.False)
	case *syntax.IndexExpr:
		e.X, e.Y = r.expr(e.X), r.expr(e.Y)
		return indexExpr(e)
	case *syntax.SliceExpr:
		e.X = r.expr(e.X)
		e.Lo, e.Hi, e.Step = r.optional(e.Lo), r.optional(e.Hi), r.optional(e.Step)
		return sliceExpr(e)
	case *syntax.ListExpr:
		r.exprs(e.List)
	case *syntax.TupleExpr:
		r.exprs(e.List)
		if mayNest(e.List) {
			start, _ := e.Span()
			return guardCall(guardTuple, start, e.List...)
		}
	case *syntax.DictExpr:
		for _, entry := range e.List {
			r.expr(entry)
		}
	case *syntax.DictEntry:
		e.Key, e.Value = r.expr(e.Key), r.expr(e.Value)
	case *syntax.Comprehension:
		for _, c := range e.Clauses {
			switch c := c.(type) {
			case *syntax.ForClause:
				c.Vars = r.target(c.Vars)
				c.X = r.expr(c.X)
			case *syntax.IfClause:
				c.Cond = r.expr(c.Cond)
			}
		}
		e.Body = r.expr(e.Body)
	case *syntax.LambdaExpr:
		r.params(e.Params)
		e.Body = r.expr(e.Body)
	}
	return e
}

func (r *rewriter) optional(e syntax.Expr) syntax.Expr {
	if e == nil {
		return nil
	}
	return r.expr(e)
}

// binaryGuard names the guard of x op y, or "" when it needs none.
func binaryGuard(op syntax.Token, x, y syntax.Expr) string {
	switch op {
	case syntax.STAR:
		if !number(x) || !number(y) {
			return guardStar
		}
	case syntax.PLUS:
		if !number(x) && !number(y) && (!bounded(x) || !bounded(y)) {
			return guardPlus
		}
	case syntax.PERCENT:
		if !number(x) && !number(y) {
			return guardPercent
		}
	case syntax.PIPE:
		if !number(x) && !number(y) {
			return guardPipe
		}
	}
	return ""
}

// mayNest reports whether a tuple display of elems may hold a tuple
// that is not a constant: one whose nesting the source does not bound.
func mayNest(elems []syntax.Expr) bool {
	for _, e := range elems {
		switch unparen(e).(type) {
		case *syntax.ListExpr, *syntax.DictExpr, *syntax.Comprehension, *syntax.LambdaExpr:
			continue
		}
		if !isConstant(e) {
			return true
		}
	}
	return false
}

// number reports whether e is a number literal.
func number(e syntax.Expr) bool {
	switch e := unparen(e).(type) {
	case *syntax.Literal:
		return e.Token == syntax.INT || e.Token == syntax.FLOAT
	case *syntax.UnaryExpr:
		return (e.Op == syntax.MINUS || e.Op == syntax.PLUS) && number(e.X)
	}
	return false
}

// bounded reports whether e is a literal or a list or tuple display,
// whose size the source bounds.
func bounded(e syntax.Expr) bool {
	switch unparen(e).(type) {
	case *syntax.Literal, *syntax.ListExpr, *syntax.TupleExpr:
		return true
	}
	return number(e)
}

// guardCall is a call of the guard name at pos, where the operation it
// replaces stood: errors and backtraces point there.
func guardCall(name string, pos syntax.Position, args ...syntax.Expr) *syntax.CallExpr {
	return &syntax.CallExpr{Fn: &syntax.Ident{NamePos: pos, Name: name}, Lparen: pos, Args: args, Rparen: pos}
}
