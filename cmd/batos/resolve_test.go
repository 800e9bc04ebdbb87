package main

import (
	"strings"
	"testing"
)

// TestUndoAndHistoryTakeWhatPeopleType: undo takes the first digits of a
// TID as log prints it (an ambiguous prefix lists the candidates), and
// history takes a root name or a dotted path, on the image and through
// batos run.
func TestUndoAndHistoryTakeWhatPeopleType(t *testing.T) {
	for _, viaServer := range []bool{false, true} {
		img := newImage(t)
		if viaServer {
			_, _, stop := startRun(t, img)
			defer stop()
		}
		mustRun(t, "-image", img, "eval", "genesis.child = new(name='kid')")
		mustRun(t, "-image", img, "eval", "genesis.child.toy = new(name='ball')")
		log := logJSON(t, img)
		var newer, older string
		for _, txn := range log {
			if d, _ := txn["description"].(string); strings.HasPrefix(d, "eval: genesis.child.toy") {
				newer = txn["tid"].(string)
			} else if strings.HasPrefix(d, "eval: genesis.child =") {
				older = txn["tid"].(string)
			}
		}
		if newer == "" || older == "" {
			t.Fatalf("the evals are not in the log: %v", log)
		}
		for _, target := range []string{"genesis", "genesis.child", "genesis.child.toy"} {
			if out := mustRun(t, "-image", img, "history", target); !strings.Contains(out, newer) && !strings.Contains(out, older) {
				t.Errorf("server %v: history %s: %q, want the evals' TIDs", viaServer, target, out)
			}
		}
		if code, _, errOut := batos(t, "-image", img, "history", "genesis.nobody"); code != 1 || !strings.Contains(errOut, "no slot nobody") {
			t.Errorf("server %v: history genesis.nobody: exit %d %q", viaServer, code, errOut)
		}

		shared := commonPrefix(newer, older)
		code, _, errOut := batos(t, "-image", img, "undo", shared)
		if code == 0 || !strings.Contains(errOut, "ambiguous") || !strings.Contains(errOut, newer) || !strings.Contains(errOut, older) {
			t.Errorf("server %v: undo %s: exit %d %q, want both candidates listed", viaServer, shared, code, errOut)
		}
		if out := mustRun(t, "-image", img, "undo", newer[:len(shared)+1]); !strings.Contains(out, "eval: genesis.child.toy") {
			t.Errorf("server %v: undo %s: %q, want the newer eval undone", viaServer, newer[:len(shared)+1], out)
		}
		if code, _, errOut := batos(t, "-image", img, "undo", "2"); code != 1 || !strings.Contains(errOut, "begins 2") {
			t.Errorf("server %v: undo 2: exit %d %q, want no transaction", viaServer, code, errOut)
		}
	}
}

// commonPrefix is the longest prefix a and b share.
func commonPrefix(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return a[:i]
}
