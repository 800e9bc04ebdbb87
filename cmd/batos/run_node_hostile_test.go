package main

import (
	"strings"
	"testing"
)

// TestHostileRunNodeFlag: -node values the database cannot store as a
// lease holder (its holder column is text: no invalid UTF-8) must be
// refused as usage errors, like control characters are; accepted, every
// lease the node asks for fails and it runs no cycle and no heartbeat.
// A bad -heartbeat follows, so an accepted -node fails on it instead of
// serving.
func TestHostileRunNodeFlag(t *testing.T) {
	img := newImage(t)
	for name, node := range map[string]string{
		"invalid UTF-8": "node\xff",
		"lone byte":     "\xc3",
		"control":       "node\x01",
	} {
		code, _, errOut := batos(t, "-image", img, "run", "-node", node, "-heartbeat", "-1s")
		if code != 2 || !strings.Contains(errOut, "-node") {
			t.Errorf("%s: exit %d, %q; want -node refused", name, code, errOut)
		}
	}
	for name, lease := range map[string]string{"zero": "0s", "negative": "-1s", "huge": "9999h", "tiny": "1ns"} {
		code, _, errOut := batos(t, "-image", img, "run", "-lease", lease, "-heartbeat", "-1s")
		if code != 2 || !strings.Contains(errOut, "-lease") {
			t.Errorf("-lease %s (%s): exit %d, %q; want -lease refused", lease, name, code, errOut)
		}
	}
}
