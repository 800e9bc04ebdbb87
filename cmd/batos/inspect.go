package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"batos/internal/command"
	"batos/internal/image"
	"batos/internal/store"
)

func init() {
	commands["inspect"] = cliCommand{"show an object: own slots, parents, inherited slots, methods", runInspect}
}

func runInspect(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "inspect", "[-json] [-at TID] TARGET", `Show TARGET (a root name, a dotted path or an OID): its own slots, its parents,
the slots it inherits and from where (the first found, depth-first, as a send
would), and the source of every method. -at shows it as a transaction left it
(a TID as log prints it, or its first digits).`)
	asJSON := jsonFlag(fs)
	at := fs.String("at", "", "show the object as this transaction left it (a TID, or its first digits)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("inspect takes one TARGET")
	}
	s, err := openSession(ctx, e, readWrite)
	if err != nil {
		return err
	}
	defer s.Close()
	var view command.ObjectView
	if *at == "" {
		view, err = s.Inspect(ctx, idArg(fs, 0))
	} else {
		var tid store.TID
		if tid, err = command.ResolveTID(ctx, s, *at); err != nil {
			return err
		}
		view, err = s.InspectAt(ctx, idArg(fs, 0), tid)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e.stdout, inspectJSON(view))
	}
	printObjectView(e.stdout, view)
	return nil
}

func printObjectView(w io.Writer, v command.ObjectView) {
	fmt.Fprintf(w, "%s\n", command.Label(v.OID, v.Name))
	if len(v.Parents) > 0 {
		parents := make([]string, len(v.Parents))
		for i, p := range v.Parents {
			parents[i] = p.Slot + " -> " + command.Label(p.OID, p.Name)
		}
		fmt.Fprintf(w, "parents: %s\n", strings.Join(parents, ", "))
	}
	printSlots := func(title string, slots []command.SlotView, withOwner bool) {
		if len(slots) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s:\n", title)
		for _, s := range slots {
			from := ""
			if withOwner {
				from = "   (from " + command.Label(s.Owner, s.OwnerName) + ")"
			}
			if s.Method != "" {
				fmt.Fprintf(w, "  %s: method%s\n", s.Name, from)
				if s.Deprecated != "" {
					fmt.Fprintf(w, "      deprecated %s\n", s.Deprecated)
				}
				for _, line := range strings.Split(strings.TrimRight(s.Method, "\n"), "\n") {
					fmt.Fprintf(w, "      | %s\n", line)
				}
				continue
			}
			fmt.Fprintf(w, "  %s = %s%s\n", s.Name, truncate(s.Repr, 200), from)
		}
	}
	printSlots("own slots", v.Own, false)
	printSlots("inherited slots", v.Inherited, true)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("… (%d bytes)", len(s))
}

// inspectJSON is the view as the bridge carries it, with references as
// "oid:N" strings and each slot's value rendered as JSON.
func inspectJSON(v command.ObjectView) map[string]any {
	name := func(n string) any {
		if n == "" {
			return nil
		}
		return n
	}
	slots := func(ss []command.SlotView) []map[string]any {
		out := make([]map[string]any, len(ss))
		for i, s := range ss {
			out[i] = map[string]any{"name": s.Name, "value": image.ValueToJSON(s.Value), "repr": s.Repr, "owner": s.Owner.String(), "owner_name": name(s.OwnerName)}
			if s.Method != "" {
				out[i]["method"] = s.Method
			}
			if s.Deprecated != "" {
				out[i]["deprecated"] = s.Deprecated
			}
		}
		return out
	}
	parents := make([]map[string]any, len(v.Parents))
	for i, p := range v.Parents {
		parents[i] = map[string]any{"slot": p.Slot, "oid": p.OID.String(), "name": name(p.Name)}
	}
	return map[string]any{"oid": v.OID.String(), "name": name(v.Name), "parents": parents, "own": slots(v.Own), "inherited": slots(v.Inherited)}
}
