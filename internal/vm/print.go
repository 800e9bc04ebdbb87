package vm

import (
	"errors"
	"fmt"
	"math/bits"
	"unicode/utf8"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// maxPrintDepth bounds the nesting of containers the VM prints (str,
// repr, print, fail, %, format, a result's repr). Starlark's own printer
// recurses and looks each list up in the path to it, which costs the
// square of the depth and ignores the time limit; the VM prints with
// printer instead, which does neither, and refuses deeper values.
const maxPrintDepth = 1000

// maxIntBits bounds the ints that multiplication makes and that the VM
// parses or prints: big-number arithmetic and conversions cost more than
// linear time, in one step the time limit cannot interrupt.
const maxIntBits = 1 << 18

// errTooBig is returned by a printer with a max when its output would
// pass it.
var errTooBig = errors.New("vm: output over its limit")

// printer renders values exactly as Starlark's str and repr do, without
// recursion: depth is bounded by maxPrintDepth, output by max (when not
// 0), and each growth of its buffer is reserved against ex's memory
// budgets (when ex is not nil). Every few thousand values it looks
// whether ex was stopped (the time limit, say) and stops with it.
type printer struct {
	ex       *execution
	max      int
	maxDepth int  // 0 means maxPrintDepth
	count    bool // only count the output's length, in n
	n        int
	buf      []byte
	stack    []printFrame
	path     []starlark.Value // lists and dicts being printed, outermost first
	onPath   map[starlark.Value]bool
	values   int // values printed
	deepest  int // the deepest nesting seen
}

// printFrame is a container being printed.
type printFrame struct {
	v      starlark.Value
	n      int // Len at the start; elements printed so far in i
	i      int
	iter   starlark.Iterator // a dict's keys, a set's elements
	key    starlark.Value    // a dict's key whose value comes next
	onPath bool
}

// render is the text of v as repr (or, for strings with str, as they
// are) would give it, charged to thread's execution.
func render(thread *starlark.Thread, v starlark.Value, str bool) (string, error) {
	if s, ok := v.(starlark.String); ok && str {
		return string(s), nil
	}
	p := &printer{ex: executionOf(thread)}
	if err := p.value(v); err != nil {
		return "", err
	}
	return string(p.buf), nil
}

// value writes v.
func (p *printer) value(v starlark.Value) (err error) {
	defer func() {
		for _, f := range p.stack {
			if f.iter != nil {
				f.iter.Done()
			}
		}
		p.stack = p.stack[:0]
	}()
	if err := p.open(v); err != nil {
		return err
	}
	for len(p.stack) > 0 {
		if err := p.step(); err != nil {
			return err
		}
	}
	return nil
}

// step writes the next part of the innermost container.
func (p *printer) step() error {
	f := &p.stack[len(p.stack)-1]
	if f.key != nil { // the key is written: its value
		k := f.key
		f.key = nil
		v, _, err := f.v.(*starlark.Dict).Get(k)
		if err != nil {
			return err
		}
		if err := p.write(": "); err != nil {
			return err
		}
		return p.open(v)
	}
	next, ok := p.next(f)
	if !ok {
		return p.close()
	}
	if f.i > 0 {
		if err := p.write(", "); err != nil {
			return err
		}
	}
	f.i++
	if _, isDict := f.v.(*starlark.Dict); isDict {
		f.key = next
	}
	return p.open(next)
}

// next is the next element of f's container, if any.
func (p *printer) next(f *printFrame) (starlark.Value, bool) {
	var x starlark.Value
	switch c := f.v.(type) {
	case *starlark.List:
		if f.i >= c.Len() {
			return nil, false
		}
		return c.Index(f.i), true
	case starlark.Tuple:
		if f.i >= len(c) {
			return nil, false
		}
		return c[f.i], true
	}
	if !f.iter.Next(&x) {
		return nil, false
	}
	return x, true
}

// open writes a scalar, or the start of a container and pushes it.
func (p *printer) open(v starlark.Value) error {
	if p.values++; p.values%4096 == 0 && p.ex != nil {
		if err := p.ex.stopped(); err != nil {
			return err
		}
	}
	switch x := v.(type) {
	case *starlark.List:
		if p.onPathHas(x) {
			return p.write("[...]")
		}
		return p.push(printFrame{v: x, n: x.Len(), onPath: true}, "[")
	case starlark.Tuple:
		return p.push(printFrame{v: x, n: len(x)}, "(")
	case *starlark.Dict:
		if p.onPathHas(x) {
			return p.write("{...}")
		}
		return p.push(printFrame{v: x, n: x.Len(), iter: x.Iterate(), onPath: true}, "{")
	case *starlark.Set:
		return p.push(printFrame{v: x, n: x.Len(), iter: x.Iterate()}, "set([")
	case starlark.String:
		return p.quoted(string(x))
	case starlark.Int:
		if bitLen(x) > maxIntBits {
			return &LimitError{Limit: MemoryLimit, Detail: fmt.Sprintf("printing an int of %d bits; the VM prints ints of at most %d bits", bitLen(x), maxIntBits)}
		}
	case nil:
		return p.write("<nil>")
	}
	return p.write(v.String())
}

func (p *printer) push(f printFrame, open string) error {
	limit := p.maxDepth
	if limit == 0 {
		limit = maxPrintDepth
	}
	if len(p.stack) >= limit {
		if f.iter != nil {
			f.iter.Done()
		}
		return &LimitError{Limit: NestingLimit, Detail: fmt.Sprintf("printing a value nested more than %d levels deep", limit)}
	}
	p.stack = append(p.stack, f)
	p.deepest = max(p.deepest, len(p.stack))
	if f.onPath {
		p.path = append(p.path, f.v)
		if p.onPath != nil {
			p.onPath[f.v] = true
		} else if len(p.path) > 16 {
			// Deep: look paths up in a set rather than scan them.
			p.onPath = make(map[starlark.Value]bool, len(p.path))
			for _, x := range p.path {
				p.onPath[x] = true
			}
		}
	}
	return p.write(open)
}

// close ends the innermost container.
func (p *printer) close() error {
	f := p.stack[len(p.stack)-1]
	p.stack = p.stack[:len(p.stack)-1]
	if f.iter != nil {
		f.iter.Done()
	}
	if f.onPath {
		p.path = p.path[:len(p.path)-1]
		if p.onPath != nil {
			delete(p.onPath, f.v)
		}
	}
	switch f.v.(type) {
	case *starlark.List:
		return p.write("]")
	case starlark.Tuple:
		if f.n == 1 {
			return p.write(",)")
		}
		return p.write(")")
	case *starlark.Dict:
		return p.write("}")
	}
	return p.write("])")
}

func (p *printer) onPathHas(v starlark.Value) bool {
	if p.onPath != nil {
		return p.onPath[v]
	}
	for _, x := range p.path {
		if x == v {
			return true
		}
	}
	return false
}

// quoted writes s as a Starlark string literal.
func (p *printer) quoted(s string) error {
	if p.count {
		p.n += quotedLen(s)
		return p.write("")
	}
	if p.max > 0 && len(p.buf)+len(s)+2 > p.max {
		return errTooBig
	}
	if len(s) >= ignoreBelow {
		// syntax.Quote's own buffer, then the copy here.
		held, err := p.ex.reserve(uint64(quotedLen(s)) * 2)
		defer release(held)
		if err != nil {
			return err
		}
	}
	return p.write(syntax.Quote(s, false))
}

// write appends s, growing the buffer within the limits.
func (p *printer) write(s string) error {
	if p.count {
		if p.n += len(s); p.max > 0 && p.n > p.max {
			return errTooBig
		}
		return nil
	}
	need := len(p.buf) + len(s)
	if p.max > 0 && need > p.max {
		return errTooBig
	}
	if need > cap(p.buf) {
		size := max(2*cap(p.buf), need, 64)
		if p.max > 0 {
			size = min(size, p.max)
		}
		held, err := p.ex.reserve(uint64(size))
		if err != nil {
			return err
		}
		b := make([]byte, len(p.buf), size)
		copy(b, p.buf)
		p.buf = b
		release(held)
	}
	p.buf = append(p.buf, s...)
	return nil
}

// quotedLen bounds the length of syntax.Quote(s, false).
func quotedLen(s string) int {
	if len(s) < 1<<20 {
		return 4*len(s) + 2
	}
	n := 2
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= utf8.RuneSelf || c < ' ' || c == 0x7f:
			n += 4
		case c == '"' || c == '\\':
			n += 2
		default:
			n++
		}
	}
	return n
}

// bitLen is the number of bits of |x|.
func bitLen(x starlark.Int) int {
	if n, ok := x.Int64(); ok {
		if n < 0 {
			n = -n
		}
		return bits.Len64(uint64(n))
	}
	return x.BigInt().BitLen()
}
