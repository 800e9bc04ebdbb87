package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"batos/internal/command"
	"batos/internal/image"
)

func init() {
	commands["send"] = cliCommand{"send a message to an object: send TARGET SELECTOR [ARGS]", runSend}
}

func runSend(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "send", "[-json] [-kw JSON] [-handle | -learn-timeout D] TARGET SELECTOR [ARGS]", `Send SELECTOR to TARGET (a root name such as genesis, or an OID such as oid:7)
in one transaction. ARGS is a JSON array of the arguments ('["ada", 3]'), or
several JSON values, one per argument; -kw gives keyword arguments as a JSON
object. Objects are written {"$ref": "oid:7"}.

When nothing understands the message and batos run serves the image with a
mind, a cognitive cycle learns the method: send waits for it (up to
-learn-timeout) and prints the real answer, or, with -handle, prints the
cycle's number at once and the cycle answers the message itself when it is
done (batos cycle show N).`)
	asJSON := jsonFlag(fs)
	kw := fs.String("kw", "", "keyword arguments as a JSON object")
	handle := fs.Bool("handle", false, "do not wait for a cycle learning the message: print its number at once")
	learnTimeout := fs.Duration("learn-timeout", 0, "how long to wait for a cycle learning the message (default 10m)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 2 {
		return usageError("send needs TARGET and SELECTOR")
	}
	if *learnTimeout < 0 {
		return usageError("-learn-timeout %s: want a positive duration such as 30s or 5m", *learnTimeout)
	}
	if *handle && *learnTimeout > 0 {
		return usageError("-handle does not wait, so -learn-timeout means nothing with it")
	}
	sendArgs, err := parseJSONArgs(fs.Args()[2:])
	if err != nil {
		return usageError("%v", err)
	}
	kwargs, err := parseJSONKwargs(*kw)
	if err != nil {
		return usageError("%v", err)
	}
	s, err := openSession(ctx, e, readWrite)
	if err != nil {
		return err
	}
	defer s.Close()
	learnLocally(ctx, e, s)
	res, err := s.Send(ctx, command.SendRequest{Target: idArg(fs, 0), Selector: idArg(fs, 1), Args: sendArgs, Kwargs: kwargs, Learn: command.Learn{Handle: *handle, Timeout: *learnTimeout}})
	if id, joined, ok := command.ParseLearningHandle(res); ok && err == nil && !*asJSON {
		verb := "started"
		if joined {
			verb = "joined"
		}
		when := "it answers the message when done"
		if s.local != nil {
			// This process ends now; the cycle goes on where the image is served.
			when = "it goes on, and answers the message, when batos run serves the image"
		}
		fmt.Fprintf(e.stdout, "learning: %s cycle %d; %s (batos cycle show %d)\n", verb, id, when, id)
		return nil
	}
	return printResult(e, res, err, *asJSON)
}

func parseJSONArgs(args []string) ([]image.Value, error) {
	if len(args) == 1 && strings.HasPrefix(strings.TrimSpace(args[0]), "[") {
		var list []any
		if err := decodeJSON(args[0], &list); err != nil {
			return nil, fmt.Errorf("ARGS %s: %w", args[0], err)
		}
		v, err := image.ValueFromJSON(list)
		if err != nil {
			return nil, fmt.Errorf("ARGS %s: %w", args[0], err)
		}
		return v.(*image.List).Elems, nil
	}
	out := make([]image.Value, 0, len(args))
	for i, a := range args {
		var x any
		if err := decodeJSON(a, &x); err != nil {
			return nil, fmt.Errorf("argument %d (%s) is not JSON: %w (quote strings: '\"ada\"')", i+1, a, err)
		}
		v, err := image.ValueFromJSON(x)
		if err != nil {
			return nil, fmt.Errorf("argument %d: %w", i+1, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func parseJSONKwargs(s string) ([]image.Slot, error) {
	if s == "" {
		return nil, nil
	}
	var m map[string]any
	if err := decodeJSON(s, &m); err != nil {
		return nil, fmt.Errorf("-kw %s: %w", s, err)
	}
	var out []image.Slot
	for _, k := range sortedKeys(m) {
		v, err := image.ValueFromJSON(m[k])
		if err != nil {
			return nil, fmt.Errorf("-kw %s: %w", k, err)
		}
		out = append(out, image.Slot{Name: k, Value: v})
	}
	return out, nil
}

func decodeJSON(s string, dst any) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the JSON value")
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
