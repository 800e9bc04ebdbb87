package heartbeat

import (
	"errors"
	"fmt"
	"time"

	"batos/internal/image"
	"batos/internal/store"
)

// Policies: what a proposal that passed every gate does.
const (
	// PolicyPropose holds it for a person: batos proposal accept.
	PolicyPropose = "propose"
	// PolicyAuto installs it, revertable with batos method revert.
	PolicyAuto = "auto"
)

// Settings are the heartbeat object's slots, which a person may edit
// from the REPL (heartbeat.policy = "auto").
type Settings struct {
	Policy string
	// Notes say why a setting in force is not the one written: a value
	// batos cannot use is read as its default (an unknown policy as
	// "propose", the safe one).
	Notes []string
	// AuditBudget and DayBudget bound the tokens (prompt and completion)
	// one audit, and the audits of the last 24 hours together, may
	// spend: ALFRED's answer and the improvement cycles it starts. 0
	// spends nothing on improvements: every proposal is deferred.
	AuditBudget, DayBudget int64
	// Cooldown is how long a method whose proposal was rejected gets no
	// new one; 0 for none, at most MaxCooldown.
	Cooldown time.Duration
	// NextDue is when the next scheduled audit runs; zero: not yet
	// scheduled.
	NextDue time.Time
}

// Defaults of the settings an image has not set.
const (
	DefaultAuditBudget = 200_000
	DefaultDayBudget   = 1_000_000
	DefaultCooldown    = 24 * time.Hour
)

// MaxCooldown bounds heartbeat.cooldown_s: a longer one is read as it (a
// duration over 292 years does not fit a time.Duration).
const MaxCooldown = 100 * 365 * 24 * time.Hour

func heartbeatObject(tx *image.Tx) (*image.Object, error) { return rootObject(tx, "heartbeat") }

// LoadSettings reads the heartbeat's settings, defaults for what is not
// set.
func LoadSettings(tx *image.Tx) (Settings, error) {
	o, err := heartbeatObject(tx)
	if err != nil {
		return Settings{}, err
	}
	s := Settings{Policy: PolicyPropose, AuditBudget: DefaultAuditBudget, DayBudget: DefaultDayBudget, Cooldown: DefaultCooldown}
	if v, ok := o.Get("policy"); ok {
		switch p, _ := v.(image.String); p {
		case PolicyPropose, PolicyAuto:
			s.Policy = string(p)
		default:
			s.Notes = append(s.Notes, fmt.Sprintf("heartbeat.policy is %s, which is neither %q nor %q: proposals wait for a person", clip(image.Repr(v), 60), PolicyPropose, PolicyAuto))
		}
	}
	count := func(slot string, into *int64, unit string) {
		v, ok := o.Get(slot)
		if !ok {
			return
		}
		if n, isInt := v.(image.Int); isInt && n >= 0 {
			*into = int64(n)
			return
		}
		s.Notes = append(s.Notes, fmt.Sprintf("heartbeat.%s is %s, not a count of %s (0 or more): read as %d", slot, clip(image.Repr(v), 60), unit, *into))
	}
	count("budget_per_audit", &s.AuditBudget, "tokens")
	count("budget_per_day", &s.DayBudget, "tokens")
	cool := int64(s.Cooldown / time.Second)
	count("cooldown_s", &cool, "seconds")
	if max := int64(MaxCooldown / time.Second); cool > max {
		s.Notes = append(s.Notes, fmt.Sprintf("heartbeat.cooldown_s is %d, over the longest cool-down batos keeps (%d, 100 years): read as that", cool, max))
		cool = max
	}
	s.Cooldown = time.Duration(cool) * time.Second
	if v, ok := o.Get("next_due"); ok {
		if t, isString := v.(image.String); isString {
			s.NextDue, _ = time.Parse(time.RFC3339Nano, string(t))
		}
	}
	return s, nil
}

// ensureSettings writes the defaults an image lacks into the heartbeat
// object, so a person sees what can be set.
func ensureSettings(o *image.Object) error {
	for _, d := range []struct {
		slot string
		v    image.Value
	}{
		{"policy", image.String(PolicyPropose)}, {"budget_per_audit", image.Int(DefaultAuditBudget)},
		{"budget_per_day", image.Int(DefaultDayBudget)}, {"cooldown_s", image.Int(int64(DefaultCooldown / time.Second))},
		{"cooldowns", &image.Dict{}},
	} {
		if _, ok := o.Get(d.slot); !ok {
			if err := o.Set(d.slot, d.v); err != nil {
				return err
			}
		}
	}
	return nil
}

// Awaken gives the image's heartbeat object its default settings; the
// uvm calls it when it awakens the image. A root whose heartbeat slot a
// person set to something else is left as it is, and awakens: every
// audit then says what is wrong, and the image stays open for the REPL
// that puts an object back (root.heartbeat = new(None, name =
// "heartbeat")), which the next awakening fills in.
func Awaken(tx *image.Tx) error {
	o, err := heartbeatObject(tx)
	if errors.Is(err, image.ErrNotObject) || errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return ensureSettings(o)
}

// coolingUntil is when the method's cool-down ends, zero if it has none.
func coolingUntil(o *image.Object, key string) time.Time {
	v, _ := o.Get("cooldowns")
	d, _ := v.(*image.Dict)
	t, _ := d.Get(image.String(key))
	s, _ := t.(image.String)
	until, _ := time.Parse(time.RFC3339Nano, string(s))
	return until
}

// coolDown starts a method's cool-down, in tx, dropping cool-downs that
// ended before now.
func coolDown(tx *image.Tx, key string, now time.Time, d time.Duration) error {
	o, err := heartbeatObject(tx)
	if err != nil {
		return err
	}
	v, _ := o.Get("cooldowns")
	old, _ := v.(*image.Dict)
	fresh := &image.Dict{}
	for k, t := range old.All() {
		s, _ := t.(image.String)
		if until, err := time.Parse(time.RFC3339Nano, string(s)); err == nil && until.After(now) {
			if err := fresh.Set(k, t); err != nil {
				return err
			}
		}
	}
	if err := fresh.Set(image.String(key), image.String(now.Add(d).UTC().Format(time.RFC3339Nano))); err != nil {
		return err
	}
	return o.Set("cooldowns", fresh)
}
