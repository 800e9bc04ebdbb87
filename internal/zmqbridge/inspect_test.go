package zmqbridge_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"batos/internal/command"
	"batos/internal/image"
	"batos/internal/uvm/uvmtest"
)

// TestInspectIsData: inspect answers data: the object's OID as a
// reference (ext 1) beside its name, each parent as a reference with its
// slot and name, and each slot's owner as a reference beside its name.
func TestInspectIsData(t *testing.T) {
	u := uvmtest.Open(t, nil)
	svc := command.NewLocal(u, "")
	if _, err := svc.Eval(t.Context(), command.EvalRequest{Code: "genesis.colour = 'blue'\nroot.kid = new(genesis, name = 'kid')"}); err != nil {
		t.Fatal(err)
	}
	g, err := svc.Inspect(t.Context(), "genesis")
	if err != nil {
		t.Fatal(err)
	}
	k, err := svc.Inspect(t.Context(), "kid")
	if err != nil {
		t.Fatal(err)
	}
	_, addr, _ := startServer(t, svc)
	d := dealer(t, addr)
	r := req(t, d, map[string]any{"id": int64(1), "command": "inspect", "target": "kid"})
	res, _ := r["result"].(map[string]any)
	if r["ok"] != true || res["oid"] != image.Ref(k.OID) || res["name"] != "kid" {
		t.Fatalf("inspect kid: got %v, want its OID as a reference and its name", r)
	}
	if diff := cmp.Diff(res["parents"], []any{map[string]any{"slot": "parent*", "oid": image.Ref(g.OID), "name": "genesis"}}); diff != "" {
		t.Errorf("parents (-got +want):\n%s", diff)
	}
	var colour map[string]any
	for _, x := range res["inherited"].([]any) {
		if s := x.(map[string]any); s["name"] == "colour" {
			colour = s
		}
	}
	if colour == nil || colour["owner"] != image.Ref(g.OID) || colour["owner_name"] != "genesis" || colour["value"] != "blue" {
		t.Errorf("inherited colour: got %v, want owner genesis as a reference", colour)
	}
	for _, x := range res["own"].([]any) {
		if s := x.(map[string]any); s["owner"] != image.Ref(k.OID) || s["owner_name"] != "kid" {
			t.Errorf("own slot %v: want kid's reference as its owner", s)
		}
	}
}

// TestInspectAtATransaction: inspect with a tid shows the object as that
// transaction left it (a prefix of the TID will do); an object made
// later is not_found then.
func TestInspectAtATransaction(t *testing.T) {
	u := uvmtest.Open(t, nil)
	_, addr, _ := startServer(t, command.NewLocal(u, ""))
	d := dealer(t, addr)
	req(t, d, map[string]any{"id": int64(1), "command": "eval", "code": "genesis.v = 1"})
	first := u.Store().LastTID().String()
	req(t, d, map[string]any{"id": int64(2), "command": "eval", "code": "genesis.v = 2\ngenesis.later = new(name = 'later')"})
	value := func(r map[string]any) any {
		res, _ := r["result"].(map[string]any)
		for _, s := range res["own"].([]any) {
			if m := s.(map[string]any); m["name"] == "v" {
				return m["value"]
			}
		}
		return nil
	}
	if v := value(req(t, d, map[string]any{"id": int64(3), "command": "inspect", "target": "genesis", "tid": first})); v != int64(1) {
		t.Errorf("genesis.v as of %s: %v, want 1", first, v)
	}
	if v := value(req(t, d, map[string]any{"id": int64(4), "command": "inspect", "target": "genesis", "tid": first[:15]})); v != int64(1) {
		t.Errorf("genesis.v as of the prefix %s: %v, want 1", first[:15], v)
	}
	if v := value(req(t, d, map[string]any{"id": int64(5), "command": "inspect", "target": "genesis"})); v != int64(2) {
		t.Errorf("genesis.v now: %v, want 2", v)
	}
	if r := req(t, d, map[string]any{"id": int64(6), "command": "inspect", "target": "genesis.later", "tid": first}); errKind(r) != command.KindNotFound {
		t.Errorf("an object made later, as of before: %v, want not_found", r)
	}
}
