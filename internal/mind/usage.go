package mind

import (
	"context"
	"fmt"
	"sort"
	"time"
	"unicode/utf8"

	"batos/internal/image"
)

// Call is the record of one model call: who asked, what answered, what
// it cost and how it ended.
type Call struct {
	Persona          string
	Model            string
	Adapter          string // the adapter's digest ("sha256:…"), or empty
	PromptTokens     int
	CompletionTokens int
	Latency          time.Duration
	// Outcome is "ok", or the error's text.
	Outcome string
	At      time.Time
}

// OK reports whether the call succeeded.
func (c *Call) OK() bool { return c.Outcome == "ok" }

// Usage is a persona's running totals.
type Usage struct {
	Calls            int64
	Failures         int64
	PromptTokens     int64
	CompletionTokens int64
	Latency          time.Duration // summed over all calls
}

// MeanLatency is the average latency of a call, or zero.
func (u Usage) MeanLatency() time.Duration {
	if u.Calls == 0 {
		return 0
	}
	return u.Latency / time.Duration(u.Calls)
}

// recentCalls bounds the call records a persona keeps; older ones stay
// in the image's history. They live on the persona, not on one shared
// object, so personas asked at once do not contend for it.
const recentCalls = 64

var usageKeys = []string{"calls", "failures", "prompt_tokens", "completion_tokens", "latency_ms"}

func decodeUsage(d *image.Dict) Usage {
	get := func(key string) float64 {
		v, _ := d.Get(image.String(key))
		n, _ := number(v)
		return n
	}
	return Usage{
		Calls: int64(get("calls")), Failures: int64(get("failures")),
		PromptTokens: int64(get("prompt_tokens")), CompletionTokens: int64(get("completion_tokens")),
		Latency: time.Duration(get("latency_ms") * float64(time.Millisecond)),
	}
}

func encodeUsage(u Usage) (*image.Dict, error) {
	d := &image.Dict{}
	// The latency total keeps microseconds: rounded to milliseconds on
	// every call, a total of fast calls would drift.
	vals := []image.Value{image.Int(u.Calls), image.Int(u.Failures), image.Int(u.PromptTokens), image.Int(u.CompletionTokens),
		image.Float(float64(u.Latency.Microseconds()) / 1000)}
	for i, k := range usageKeys {
		if err := d.Set(image.String(k), vals[i]); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// callValue is the dict a call record is kept as.
func callValue(c Call) (*image.Dict, error) {
	d := &image.Dict{}
	pairs := []struct {
		k string
		v image.Value
	}{
		{"at", image.String(c.At.UTC().Format(time.RFC3339Nano))},
		{"persona", image.String(c.Persona)},
		{"model", image.String(c.Model)},
		{"adapter", image.String(c.Adapter)},
		{"prompt_tokens", image.Int(c.PromptTokens)},
		{"completion_tokens", image.Int(c.CompletionTokens)},
		{"latency_ms", image.Float(float64(c.Latency.Microseconds()) / 1000)},
		{"outcome", image.String(c.Outcome)},
	}
	for _, p := range pairs {
		if err := d.Set(image.String(p.k), p.v); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Record adds c to its persona's usage totals and recent calls, in one
// transaction.
func Record(ctx context.Context, db *image.DB, c Call) error {
	return db.Update(ctx, func(tx *image.Tx) error {
		tx.SetUser("batos")
		tx.Note(fmt.Sprintf("mind: %s call to %s (%s)", c.Persona, c.Model, short(c.Outcome, 80)))
		return recordIn(tx, c)
	})
}

// RecordIn is Record inside the caller's transaction: a cycle saves the
// call with the answer it records.
func RecordIn(tx *image.Tx, c Call) error { return recordIn(tx, c) }

func recordIn(tx *image.Tx, c Call) error {
	o, err := personaObject(tx, c.Persona)
	if err != nil {
		return err
	}
	var u Usage
	if v, ok := o.Peek("usage"); ok {
		if d, isDict := v.(*image.Dict); isDict {
			u = decodeUsage(d)
		}
	}
	u.Calls++
	if !c.OK() {
		u.Failures++
	}
	u.PromptTokens += int64(c.PromptTokens)
	u.CompletionTokens += int64(c.CompletionTokens)
	u.Latency += c.Latency
	d, err := encodeUsage(u)
	if err != nil {
		return err
	}
	if err := o.Set("usage", d); err != nil {
		return err
	}
	rec, err := callValue(c)
	if err != nil {
		return err
	}
	// A new list sharing the old records (never changed in place): a
	// copy of every record at each call would cost more than the call's
	// bookkeeping is worth.
	var old []image.Value
	if v, ok := o.Peek("recent_calls"); ok {
		if l, isList := v.(*image.List); isList {
			old = l.Elems
		}
	}
	if n := len(old); n >= recentCalls {
		old = old[n-recentCalls+1:]
	}
	calls := &image.List{Elems: append(append(make([]image.Value, 0, len(old)+1), old...), rec)}
	return o.Set("recent_calls", calls)
}

// RecentCalls returns the recent call records of persona (of every
// persona, merged by time, when empty), oldest first.
func RecentCalls(tx *image.Tx, persona string) ([]Call, error) {
	which := []string{persona}
	if persona == "" {
		ps, err := personasObject(tx)
		if err != nil {
			return nil, err
		}
		which = names(ps)
	}
	var out []Call
	for _, name := range which {
		o, err := personaObject(tx, name)
		if err != nil {
			return nil, err
		}
		v, _ := o.Get("recent_calls")
		l, ok := v.(*image.List)
		if !ok {
			continue
		}
		for _, e := range l.Elems {
			if d, ok := e.(*image.Dict); ok {
				out = append(out, decodeCall(d))
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, nil
}

func decodeCall(d *image.Dict) Call {
	str := func(k string) string {
		v, _ := d.Get(image.String(k))
		s, _ := v.(image.String)
		return string(s)
	}
	num := func(k string) float64 {
		v, _ := d.Get(image.String(k))
		n, _ := number(v)
		return n
	}
	at, _ := time.Parse(time.RFC3339Nano, str("at"))
	return Call{
		Persona: str("persona"), Model: str("model"), Adapter: str("adapter"),
		PromptTokens: int(num("prompt_tokens")), CompletionTokens: int(num("completion_tokens")),
		Latency: time.Duration(num("latency_ms") * float64(time.Millisecond)),
		Outcome: str("outcome"), At: at,
	}
}

func systemObject(tx *image.Tx, name string) (*image.Object, error) {
	root, err := tx.Root()
	if err != nil {
		return nil, err
	}
	v, ok := root.Get(name)
	if !ok {
		return nil, fmt.Errorf("mind: the image has no %s object", name)
	}
	return tx.Deref(v)
}

func short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n-- // cut between runes, not inside one
	}
	return s[:n] + "…"
}
