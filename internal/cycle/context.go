package cycle

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"batos/internal/image"
	"batos/internal/store"
)

// receiverView is the receiver as prompts show it. What is shown in full
// is what the mission needs; the rest is named briefly, so that prompts
// carry no noise a model must read past:
//
//   - the receiver and its parents are labelled by the root name that
//     reaches them (greeter (oid:76)), its name slot after when it says
//     something else (pet (oid:80, name "Rex"));
//   - its own methods are shown with their source;
//   - an inherited method is shown as its def line and the first line of
//     its docstring, unless it matters to the mission (see focus): then
//     with its source;
//   - similar methods outside its lineage are shown with their source.
type receiverView struct {
	desc      string
	slots     []string
	parents   []string
	own       []string         // "name:\nsource"
	inherited []inheritedGroup // in lookup order
	similar   []string         // "root_name.method:\nsource"
}

// compact is v for a prompt that must shrink to fit a model's context:
// no similar methods, no inherited ones, the receiver's own methods by
// their def lines.
func (v *receiverView) compact() *receiverView {
	c := *v
	c.similar, c.inherited = nil, nil
	c.own = make([]string, len(v.own))
	for i, m := range v.own {
		name, src, _ := strings.Cut(m, ":\n")
		def, _, _ := strings.Cut(strings.TrimSpace(src), "\n")
		c.own[i] = name + ": " + def
	}
	return &c
}

// inheritedGroup is the methods one ancestor gives the receiver (none
// shadowed by a nearer slot).
type inheritedGroup struct {
	from    string
	methods []string
}

// focus is what a prompt is about: the selector to learn and the text
// (the mission, and once there is one the plan, the answers, the
// failures, the candidate) whose names make an inherited method matter.
type focus struct {
	selector string
	text     string
}

// maxSlotRepr bounds how much of a slot value a prompt shows;
// maxMethodSource how much method source in all, and maxListed how many
// slots and methods are listed at all.
const (
	maxSlotRepr     = 200
	maxMethodSource = 6000
	maxListed       = 60
	// maxUndocumented is the longest source of an inherited method with
	// no docstring that is shown in full: its source is all that says
	// what it does.
	maxUndocumented = 400
	// maxSimilar is how many similar methods a prompt shows.
	maxSimilar = 5
)

// similarFunc finds methods similar to a selector outside the objects
// shown, as prompt lines.
type similarFunc func(tx *image.Tx, selector string, shown map[store.OID]bool) []string

func viewReceiver(tx *image.Tx, oid store.OID, f focus, similar similarFunc) (*receiverView, error) {
	o, err := tx.Object(oid)
	if err != nil {
		return nil, err
	}
	names := tx.NamesByOID()
	v := &receiverView{desc: receiverLabel(tx, o, names)}
	budget := maxMethodSource
	full := func(source string) bool {
		// Past the budget, a method is named without its source: a
		// receiver with hundreds of methods must not make every prompt
		// (and every recorded step) huge.
		if len(source) > budget {
			budget = 0
			return false
		}
		budget -= len(source)
		return true
	}
	shadowed := map[string]bool{}
	listed, unlisted := 0, 0
	// Slots are read without copies: a receiver holds many methods,
	// each with its provenance.
	for name, val := range o.PeekSlots() {
		shadowed[name] = true
		if m, ok := val.(*image.Method); ok {
			listed++
			switch shown := full(m.Source); {
			case len(v.own) == maxListed:
				unlisted++ // counted, as capList would
			case shown:
				v.own = append(v.own, name+":\n"+m.Source)
			default:
				v.own = append(v.own, synopsisLine(name, m.Source)+"  (source not shown)")
			}
			continue
		}
		v.slots = append(v.slots, name+" = "+slotText(tx, val, names))
	}
	if unlisted > 0 {
		v.own = append(v.own, fmt.Sprintf("… and %d more", unlisted))
	}
	// Inherited methods, from the ancestors in lookup order; a name is
	// listed once, from the ancestor self.name(...) reaches.
	seen := map[store.OID]bool{}
	for x, err := range tx.Lineage(o) {
		if err != nil {
			return nil, err
		}
		seen[x.OID()] = true
		if x == o {
			continue
		}
		g := inheritedGroup{from: label(x, names)}
		for name, val := range x.PeekSlots() {
			m, ok := val.(*image.Method)
			if shadowed[name] || !ok {
				shadowed[name] = true
				continue
			}
			shadowed[name] = true
			if listed++; listed > maxListed {
				continue
			}
			if matters(name, m.Source, f) && full(m.Source) {
				g.methods = append(g.methods, name+":\n"+m.Source)
			} else {
				g.methods = append(g.methods, synopsisLine(name, m.Source))
			}
		}
		if len(g.methods) > 0 {
			v.inherited = append(v.inherited, g)
		}
	}
	if listed > maxListed {
		v.inherited = append(v.inherited, inheritedGroup{from: "further ancestors", methods: []string{fmt.Sprintf("… and %d more", listed-maxListed)}})
	}
	parents, err := o.Parents()
	if err != nil {
		return nil, err
	}
	done := map[store.OID]bool{oid: true}
	for _, p := range parents {
		if !done[p.OID()] {
			done[p.OID()] = true
			v.parents = append(v.parents, label(p, names))
		}
	}
	if similar == nil {
		similar = similarMethods
	}
	v.similar = similar(tx, f.selector, seen)
	v.slots = capList(v.slots)
	return v, nil
}

// slotText is a slot's value for prompts: a reference as the label of
// what it refers to, anything else as Starlark, clipped.
func slotText(tx *image.Tx, v image.Value, names map[store.OID]string) string {
	if r, ok := v.(image.Ref); ok {
		if o, err := tx.Object(store.OID(r)); err == nil {
			return label(o, names)
		}
	}
	return clip(image.Repr(v), maxSlotRepr)
}

// label names an object for prompts: the root name that reaches it, if
// any, and its OID, with its name slot when that says something else.
func label(o *image.Object, names map[store.OID]string) string {
	return labelAs(o, names[o.OID()])
}

func labelAs(o *image.Object, path string) string {
	var slot string
	if n, ok := o.Get("name"); ok {
		if s, ok := n.(image.String); ok {
			slot = string(s)
		}
	}
	switch {
	case path == "" && slot == "":
		return o.OID().String()
	case path == "":
		return fmt.Sprintf("%s (name %q)", o.OID(), slot)
	case slot == "" || slot == path:
		return fmt.Sprintf("%s (%s)", path, o.OID())
	}
	return fmt.Sprintf("%s (%s, name %q)", path, o.OID(), slot)
}

// maxPathSearch bounds how many root objects receiverLabel looks into
// for a slot that reaches the receiver.
const maxPathSearch = 200

// receiverLabel labels the receiver by the root name that reaches it,
// or else by the path of a root object's slot that holds it
// (bank.account).
func receiverLabel(tx *image.Tx, o *image.Object, names map[store.OID]string) string {
	if _, ok := names[o.OID()]; ok {
		return label(o, names)
	}
	roots := make([]string, 0, len(names))
	byName := map[string]store.OID{}
	for oid, name := range names {
		roots = append(roots, name)
		byName[name] = oid
	}
	sort.Strings(roots)
	for i, name := range roots {
		if i == maxPathSearch || name == "root" {
			break
		}
		x, err := tx.Object(byName[name])
		if err != nil {
			continue
		}
		for slot, v := range x.PeekSlots() {
			if r, ok := v.(image.Ref); ok && store.OID(r) == o.OID() {
				return labelAs(o, name+"."+slot)
			}
		}
	}
	return label(o, names)
}

// matters reports whether an inherited method is shown with its source:
// the mission's text names it, its name shares a word with the selector,
// or it has no docstring and is short (its source is its description).
func matters(name, source string, f focus) bool {
	if similar(name, words(f.selector)) > 0 {
		return true
	}
	if f.text != "" && regexp.MustCompile(`\b`+regexp.QuoteMeta(name)+`\b`).MatchString(f.text) {
		return true
	}
	_, doc := synopsis(source)
	return doc == "" && len(source) <= maxUndocumented
}

// words are a selector's words ("display_yourself": display, yourself),
// those of three letters or more.
func words(selector string) map[string]bool {
	out := map[string]bool{}
	for _, w := range strings.Split(strings.ToLower(selector), "_") {
		if len(w) > 2 {
			out[w] = true
		}
	}
	return out
}

// similar scores a method name against a selector's words: one for each
// word they share, or that one holds whole (subtotal ~ total).
func similar(name string, selector map[string]bool) int {
	score := 0
	for _, w := range strings.Split(strings.ToLower(name), "_") {
		if selector[w] {
			score++
			continue
		}
		for s := range selector {
			if len(w) >= 5 && len(s) >= 5 && (strings.Contains(w, s) || strings.Contains(s, w)) {
				score++
				break
			}
		}
	}
	return score
}

// similarMethods finds methods on the root's objects whose names are
// similar to selector ("display_yourself" ~ "describe_yourself"), best
// first, outside the receiver's own lineage (shown already).
func similarMethods(tx *image.Tx, selector string, shown map[store.OID]bool) []string {
	ws := words(selector)
	root, err := tx.Root()
	if err != nil || len(ws) == 0 {
		return nil
	}
	type hit struct {
		score int
		text  string
	}
	var hits []hit
	for rootName, v := range root.PeekSlots() {
		r, ok := v.(image.Ref)
		if !ok || shown[store.OID(r)] {
			continue
		}
		o, err := tx.Object(store.OID(r))
		if err != nil {
			continue
		}
		for name, mv := range o.PeekSlots() {
			m, ok := mv.(*image.Method)
			if !ok {
				continue
			}
			if score := similar(name, ws); score > 0 {
				hits = append(hits, hit{score, fmt.Sprintf("%s.%s:\n%s", rootName, name, clip(m.Source, maxMethodSource/maxSimilar))})
			}
		}
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].score > hits[j].score })
	var out []string
	for i := 0; i < len(hits) && i < maxSimilar; i++ {
		out = append(out, hits[i].text)
	}
	return out
}

// synopsisLine is a method in one line: its def line and the first line
// of its docstring, as a comment.
func synopsisLine(name, source string) string {
	def, doc := synopsis(source)
	if def == "" {
		def = "def " + name + "(self, ...)"
	}
	if doc == "" {
		return def
	}
	return def + "  # " + doc
}

// maxDoc bounds a docstring's line in a synopsis.
const maxDoc = 160

// synopsis reads a method's source for its def line (without the colon,
// on one line) and the first line of its docstring; either is empty when
// the source has none.
func synopsis(source string) (def, doc string) {
	lines := strings.Split(source, "\n")
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "def ") {
			start = i
			break
		}
	}
	if start < 0 {
		return "", ""
	}
	// The def line runs until its parentheses close on a colon.
	var b strings.Builder
	depth, end := 0, -1
	for i := start; i < len(lines) && end < 0; i++ {
		l := lines[i]
		depth += strings.Count(l, "(") + strings.Count(l, "[") - strings.Count(l, ")") - strings.Count(l, "]")
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strings.TrimSpace(l))
		if depth <= 0 && strings.HasSuffix(strings.TrimSpace(l), ":") {
			end = i
		}
	}
	if end < 0 {
		return "", ""
	}
	def = strings.TrimSuffix(strings.Join(strings.Fields(b.String()), " "), ":")
	def = bracketSpaces.Replace(def)
	return def, docLine(strings.Join(lines[end+1:], "\n"))
}

// bracketSpaces closes the spaces a def line's joined lines leave inside
// its brackets.
var bracketSpaces = strings.NewReplacer("( ", "(", " )", ")", "[ ", "[", " ]", "]")

// docLine is the first line of the docstring body opens with, if any.
func docLine(body string) string {
	t := strings.TrimLeft(strings.TrimSpace(body), "rRuU")
	for _, q := range []string{`"""`, `'''`, `"`, `'`} {
		rest, ok := strings.CutPrefix(t, q)
		if !ok {
			continue
		}
		if i := strings.Index(rest, q); i >= 0 {
			rest = rest[:i]
		}
		for l := range strings.Lines(rest) {
			if l = strings.TrimSpace(l); l != "" {
				return clip(l, maxDoc)
			}
		}
		return ""
	}
	return ""
}

// viewSections writes the receiver's slots and methods.
func viewSections(b *strings.Builder, v *receiverView, parents bool) {
	section(b, "The receiver's slots", v.slots)
	if parents {
		section(b, "Its parents", v.parents)
	}
	section(b, "Its own methods, with source", v.own)
	for _, g := range v.inherited {
		section(b, "Methods it inherits from "+g.from, g.methods)
	}
	if len(v.similar) > 0 {
		section(b, "Similar methods elsewhere in the image", v.similar)
	}
}

func capList(items []string) []string {
	if len(items) <= maxListed {
		return items
	}
	return append(items[:maxListed:maxListed], fmt.Sprintf("… and %d more", len(items)-maxListed))
}
