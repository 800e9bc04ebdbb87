package main

import (
	"strings"
	"testing"
)

// TestGroupHelp: every command made of subcommands answers -h, -help,
// --help and help (and batos help GROUP) with its usage, a line for each
// subcommand, and exits 0; batos help GROUP SUB is batos GROUP SUB -h.
func TestGroupHelp(t *testing.T) {
	groups := map[string][]string{
		"method":   {"set", "revert", "stats"},
		"cycle":    {"list", "show", "retry", "cancel"},
		"persona":  {"list", "show", "set", "warm"},
		"catalog":  {"add", "search", "list", "show", "remove", "reindex", "stats"},
		"proposal": {"list", "show", "accept", "reject"},
		"model":    {"import", "show"},
		"audit":    {"run", "list", "show"},
		"image":    {"init", "stats", "verify", "log", "history", "undo", "pack"},
		"key":      {"gen"},
		"bench":    {"store", "vm", "bridge", "cycle", "catalog", "learn"},
	}
	for g, subs := range groups {
		for _, args := range [][]string{{g, "-h"}, {g, "-help"}, {g, "--help"}, {g, "help"}, {"help", g}} {
			code, out, errOut := batos(t, args...)
			if code != 0 || !strings.HasPrefix(out, "usage: batos "+g+" ") {
				t.Errorf("batos %s: exit %d\nstdout: %s\nstderr: %s\nwant 0 and the usage", strings.Join(args, " "), code, out, errOut)
				continue
			}
			for _, sub := range subs {
				if !strings.Contains(out, "\n  "+sub+" ") && !strings.Contains(out, "\n  "+sub+"\n") {
					t.Errorf("batos %s lacks a line for %s:\n%s", strings.Join(args, " "), sub, out)
				}
			}
		}
		for _, sub := range subs {
			code, out, errOut := batos(t, "help", g, sub)
			code2, out2, errOut2 := batos(t, g, sub, "-h")
			if code != 0 || code2 != 0 || out+errOut != out2+errOut2 || !strings.HasPrefix(errOut, "usage: batos ") || !strings.Contains(errOut, sub+" ") {
				t.Errorf("batos help %s %s: exit %d %q; batos %s %s -h: exit %d %q; want the same usage, exit 0",
					g, sub, code, out+errOut, g, sub, code2, out2+errOut2)
			}
		}
	}
}

// TestGroupUsageErrors: a group without a subcommand, or with an unknown
// one, is a usage error that lists or names the subcommands.
func TestGroupUsageErrors(t *testing.T) {
	if code, out, errOut := batos(t, "cycle"); code != 2 || out != "" || !strings.Contains(errOut, "\n  cancel ID") {
		t.Errorf("batos cycle: exit %d %q %q, want 2 and the subcommands on stderr", code, out, errOut)
	}
	if code, _, errOut := batos(t, "cycle", "lst"); code != 2 || !strings.Contains(errOut, `unknown cycle command "lst": want list, show, retry or cancel`) {
		t.Errorf("batos cycle lst: exit %d %q, want 2 naming the subcommands", code, errOut)
	}
}
