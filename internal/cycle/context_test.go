package cycle

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"batos/internal/image"
	"batos/internal/store"
	"batos/internal/vm"
)

func TestSynopsis(t *testing.T) {
	tests := []struct {
		name, source, def, doc string
	}{
		{"docstring", "def greet(self, who):\n    \"\"\"Greet who by name.\"\"\"\n    return 'Hello, ' + who\n",
			"def greet(self, who)", "Greet who by name."},
		{"no docstring", "def subtotal(self):\n    total = 0\n    return total\n", "def subtotal(self)", ""},
		{"multi-line def", "def add(self,\n        a,\n        b = [1, 2]):\n    'Sum of a and b.'\n    return a + b\n",
			"def add(self, a, b = [1, 2])", "Sum of a and b."},
		{"text on the next line", "def f(self):\n    \"\"\"\n    What f does.\n\n    More.\n    \"\"\"\n    return 1\n", "def f(self)", "What f does."},
		{"module docstring first", "\"\"\"A module.\"\"\"\ndef f(self, **slots):\n    return 1\n", "def f(self, **slots)", ""},
		{"no def", "x = 1\n", "", ""},
		{"unclosed def", "def f(self,\n", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			def, doc := synopsis(tt.source)
			if def != tt.def || doc != tt.doc {
				t.Errorf("got %q, %q; want %q, %q", def, doc, tt.def, tt.doc)
			}
		})
	}
	if got := synopsisLine("g", "g = 1"); got != "def g(self, ...)" {
		t.Errorf("synopsisLine of a source without def: got %q", got)
	}
}

const (
	documented   = "def summary(self):\n    \"\"\"One line about me.\"\"\"\n    return 'summary body ' + self.name\n"
	undocumented = "def subtotal(self):\n    total = 0\n    for p in self.prices:\n        total += p\n    return total\n"
	shadowedSrc  = "def shadowed(self):\n    \"\"\"The parent's.\"\"\"\n    return 'parent body'\n"
	helperSrc    = "def helper(self):\n    \"\"\"Helps.\"\"\"\n    return 'helper body'\n"
	ownSrc       = "def shadowed(self):\n    return 'own body'\n"
	similarSrc   = "def total_price(self):\n    \"\"\"The price in all.\"\"\"\n    return 'similar body'\n"
)

// contextImage makes root.shop (methods of every kind), root.cart, a
// child of shop named "my cart" holding root.bank's account, and
// root.pricing with a method like total_with_tax; it returns cart and
// the account (reached only through bank.account).
func contextImage(t *testing.T) (*image.DB, store.OID, store.OID) {
	t.Helper()
	db := personaImage(t)
	var cart, account store.OID
	err := db.Update(t.Context(), func(tx *image.Tx) error {
		root, err := tx.Root()
		if err != nil {
			return err
		}
		shop, err := tx.New(image.Slot{Name: "name", Value: image.String("shop")},
			image.Slot{Name: "summary", Value: &image.Method{Source: documented}},
			image.Slot{Name: "subtotal", Value: &image.Method{Source: undocumented}},
			image.Slot{Name: "shadowed", Value: &image.Method{Source: shadowedSrc}},
			image.Slot{Name: "helper", Value: &image.Method{Source: helperSrc}})
		if err != nil {
			return err
		}
		acct, err := tx.New(image.Slot{Name: "name", Value: image.String("savings")})
		if err != nil {
			return err
		}
		bank, err := tx.New(image.Slot{Name: "account", Value: acct.Ref()})
		if err != nil {
			return err
		}
		c, err := tx.New(image.Slot{Name: "parent*", Value: shop.Ref()}, image.Slot{Name: "name", Value: image.String("my cart")},
			image.Slot{Name: "prices", Value: &image.List{Elems: []image.Value{image.Int(3), image.Int(4)}}},
			image.Slot{Name: "wallet", Value: acct.Ref()},
			image.Slot{Name: "shadowed", Value: &image.Method{Source: ownSrc}})
		if err != nil {
			return err
		}
		pricing, err := tx.New(image.Slot{Name: "total_price", Value: &image.Method{Source: similarSrc}})
		if err != nil {
			return err
		}
		cart, account = c.OID(), acct.OID()
		for name, o := range map[string]*image.Object{"shop": shop, "cart": c, "bank": bank, "pricing": pricing} {
			if err := root.Set(name, o.Ref()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return db, cart, account
}

func view(t *testing.T, db *image.DB, oid store.OID, f focus) *receiverView {
	t.Helper()
	var v *receiverView
	if err := db.View(t.Context(), func(tx *image.Tx) (err error) {
		v, err = viewReceiver(tx, oid, f, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return v
}

// The receiver is labelled by its root name, its name slot after; its
// own methods are shown in full, an inherited one as a synopsis unless
// it matters to the mission (similar, named in the focus, or without a
// docstring); similar methods elsewhere in full.
func TestViewReceiver(t *testing.T) {
	db, cart, account := contextImage(t)
	v := view(t, db, cart, focus{selector: "total_with_tax"})
	if want := "cart (" + cart.String() + `, name "my cart")`; v.desc != want {
		t.Errorf("desc %q, want %q", v.desc, want)
	}
	if len(v.parents) != 1 || !strings.HasPrefix(v.parents[0], "shop (oid:") || strings.Contains(v.parents[0], "name") {
		t.Errorf("parents %q, want shop labelled by its root name alone", v.parents)
	}
	if want := "wallet = " + account.String() + ` (name "savings")`; !contains(v.slots, want) {
		t.Errorf("slots %q lack %q (a reference shown by its label)", v.slots, want)
	}
	if diff := cmp.Diff(v.own, []string{"shadowed:\n" + ownSrc}); diff != "" {
		t.Errorf("own methods (-got +want):\n%s", diff)
	}
	if len(v.inherited) != 1 || !strings.HasPrefix(v.inherited[0].from, "shop (") {
		t.Fatalf("inherited %+v, want one group from shop", v.inherited)
	}
	want := []string{
		`def summary(self)  # One line about me.`,
		"subtotal:\n" + undocumented, // no docstring: the source says what it does
		`def helper(self)  # Helps.`, // shadowed is the receiver's own
	}
	if diff := cmp.Diff(v.inherited[0].methods, want); diff != "" {
		t.Errorf("inherited methods (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(v.similar, []string{"pricing.total_price:\n" + similarSrc}); diff != "" {
		t.Errorf("similar methods (-got +want):\n%s", diff)
	}

	// Once the plan or an answer names an inherited method, its source is
	// shown; a method similar to the selector is too.
	v = view(t, db, cart, focus{selector: "helper_summary", text: "use self.summary() here"})
	want = []string{"summary:\n" + documented, "subtotal:\n" + undocumented, "helper:\n" + helperSrc}
	if diff := cmp.Diff(v.inherited[0].methods, want); diff != "" {
		t.Errorf("inherited methods that matter (-got +want):\n%s", diff)
	}

	// An object no root name reaches is labelled by the slot that holds it.
	if v := view(t, db, account, focus{}); v.desc != "bank.account ("+account.String()+`, name "savings")` {
		t.Errorf("account labelled %q", v.desc)
	}
}

func contains(items []string, s string) bool {
	for _, it := range items {
		if it == s {
			return true
		}
	}
	return false
}

func TestSimilar(t *testing.T) {
	tests := []struct {
		name, selector string
		want           int
	}{
		{"describe_yourself", "display_yourself", 1},
		{"subtotal", "total_with_tax", 1}, // holds "total" whole
		{"tax", "total_with_tax", 1},
		{"name", "rename", 0}, // too short to count as held
		{"clone", "display_yourself", 0},
	}
	for _, tt := range tests {
		if got := similar(tt.name, words(tt.selector)); got != tt.want {
			t.Errorf("similar(%q, %q) = %d, want %d", tt.name, tt.selector, got, tt.want)
		}
	}
}

// Every persona sees the receiver: BABS and ALFRED their sub-questions
// with its slots, parents, methods and similar methods (and catalog
// passages, once there are any); ROBIN the similar methods BRICK sees.
// The prompts keep the phrases that name the mission (understands
// "SELECTOR", Write the method SELECTOR) and say that tests run alone.
func TestPromptsShowTheReceiver(t *testing.T) {
	db, cart, _ := contextImage(t)
	c := &Cycle{Mission: Mission{Message: vm.Message{Receiver: cart, Selector: "total_with_tax"}},
		Plan: &Plan{Selector: "total_with_tax", Intent: "the subtotal plus tax", Signature: "def total_with_tax(self)",
			Tests: []Test{{Name: "sum", Expr: "self.total_with_tax() == 7.7"}}}}
	v := view(t, db, cart, workFocus(c))
	common := []string{"cart (" + cart.String(), "prices = [3, 4]", "Methods it inherits from shop (", "def summary(self)  # One line about me.",
		"Similar methods elsewhere in the image:\n  pricing.total_price:", "self.total_with_tax() == 7.7"}
	prompts := map[string]struct {
		text string
		want []string
	}{
		"BRICK":  {planPrompt(c, view(t, db, cart, planFocus(c)), nil)[0].Content, []string{`understands "total_with_tax"`, "Its parents:\n  shop (", "Each test runs alone and is rolled back"}},
		"ROBIN":  {synthesisPrompt(c, v)[0].Content, []string{"Write the method total_with_tax", "Each test runs alone and is rolled back"}},
		"BABS":   {questionPrompt(c, SubQuestion{Persona: "BABS", Question: "Which slots hold prices?"}, v, nil)[0].Content, []string{"Its parents:\n  shop (", "Which slots hold prices?"}},
		"ALFRED": {questionPrompt(c, SubQuestion{Persona: "ALFRED", Question: "Anything to avoid?"}, v, nil)[0].Content, []string{"Anything to avoid?"}},
	}
	for persona, p := range prompts {
		want := p.want
		if persona != "BRICK" {
			want = append(want, common...)
		} else {
			want = append(want, common[:5]...)
		}
		for _, w := range want {
			if !strings.Contains(p.text, w) {
				t.Errorf("%s's prompt lacks %q:\n%s", persona, w, p.text)
			}
		}
		if strings.Contains(p.text, "knowledge catalog") {
			t.Errorf("%s's prompt speaks of a catalog it does not quote", persona)
		}
		// Only the receiver's own methods and those that matter are shown
		// in full.
		if strings.Contains(p.text, "summary body") || strings.Contains(p.text, "parent body") {
			t.Errorf("%s's prompt shows the source of an inherited method that does not matter", persona)
		}
	}
	q := questionPrompt(c, SubQuestion{Persona: "BABS", Question: "?"}, v, []string{"Tax is 10%."})[0].Content
	if !strings.Contains(q, "From the knowledge catalog:\n  Tax is 10%.") {
		t.Errorf("BABS's prompt does not quote the catalog's passages:\n%s", q)
	}
}

// A receiver with more methods than are listed shows maxListed of them,
// in full while the source budget lasts, and counts the rest; it lists
// no inherited method.
func TestViewReceiverManyMethods(t *testing.T) {
	db := personaImage(t)
	const extra = 10
	body := func(i int) string {
		s := fmt.Sprintf("def m%03d(self):\n    return %d\n", i, i)
		return s + strings.Repeat("#", 199-len(s)) + "\n"
	}
	var oid store.OID
	err := db.Update(t.Context(), func(tx *image.Tx) error {
		parent, err := tx.New(image.Slot{Name: "m_helper", Value: &image.Method{Source: "def m_helper(self):\n    return 1\n"}})
		if err != nil {
			return err
		}
		slots := []image.Slot{{Name: "parent*", Value: parent.Ref()}}
		for i := range maxListed + extra {
			slots = append(slots, image.Slot{Name: fmt.Sprintf("m%03d", i), Value: &image.Method{Source: body(i)}})
		}
		o, err := tx.New(slots...)
		oid = o.OID()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	v := view(t, db, oid, focus{selector: "m_helper_too"})
	inFull := maxMethodSource / len(body(0))
	want := []string{"m000:\n" + body(0), fmt.Sprintf("m%03d:\n%s", inFull-1, body(inFull-1)),
		fmt.Sprintf("def m%03d(self)  (source not shown)", inFull), fmt.Sprintf("… and %d more", extra)}
	if len(v.own) != maxListed+1 {
		t.Fatalf("%d own methods listed, want %d and a count", len(v.own), maxListed)
	}
	got := []string{v.own[0], v.own[inFull-1], v.own[inFull], v.own[maxListed]}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("own methods (-got +want):\n%s", diff)
	}
	if len(v.inherited) != 1 || v.inherited[0].from != "further ancestors" || !cmp.Equal(v.inherited[0].methods, []string{fmt.Sprintf("… and %d more", extra+1)}) {
		t.Errorf("inherited %+v, want only the count of what is not listed", v.inherited)
	}
}
