package command

import (
	"batos/internal/image"
	"batos/internal/vm"
)

// A send that does not wait for the cycle learning its message (Learn
// Handle) answers the cycle's handle as its value, so that it travels as
// any send's result: {"cycle": ID, "joined": BOOL, "state": "learning"}.

// LearningHandle is the result of a send answered with the handle of
// cycle id; joined says the send joined a cycle already open.
func LearningHandle(id int64, joined bool) (vm.Result, error) {
	d := &image.Dict{}
	for _, kv := range []struct {
		k string
		v image.Value
	}{{"cycle", image.Int(id)}, {"joined", image.Bool(joined)}, {"state", image.String("learning")}} {
		if err := d.Set(image.String(kv.k), kv.v); err != nil {
			return vm.Result{}, err
		}
	}
	return vm.Result{Value: d, Repr: image.Repr(d)}, nil
}

// ParseLearningHandle recognises a send's result that is a learning
// handle.
func ParseLearningHandle(res vm.Result) (id int64, joined, ok bool) {
	d, isDict := res.Value.(*image.Dict)
	if !isDict || d.Len() != 3 {
		return 0, false, false
	}
	state, _ := d.Get(image.String("state"))
	c, _ := d.Get(image.String("cycle"))
	j, _ := d.Get(image.String("joined"))
	s, _ := state.(image.String)
	n, isInt := c.(image.Int)
	b, isBool := j.(image.Bool)
	if s != "learning" || !isInt || !isBool {
		return 0, false, false
	}
	return int64(n), bool(b), true
}
