package main

import (
	"context"
	"fmt"
	"io"

	"batos/internal/command"
	"batos/internal/image"
	"batos/internal/vm"
)

func init() {
	commands["eval"] = cliCommand{"evaluate Starlark code in the image, in one transaction", runEval}
}

func runEval(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "eval", "[-json] CODE", `Evaluate CODE (an expression, or statements) with the root's names bound
(genesis, traits, personas, ...), in one transaction: all of it is saved, or,
if it fails, none of it. An expression's value is printed.`)
	asJSON := jsonFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("eval takes one CODE argument (quote it)")
	}
	s, err := openSession(ctx, e, create)
	if err != nil {
		return err
	}
	defer s.Close()
	learnLocally(ctx, e, s)
	res, err := s.Eval(ctx, command.EvalRequest{Code: fs.Arg(0)})
	return printResult(e, res, err, *asJSON)
}

// printResult prints what print wrote, then the value (unless None).
func printResult(e *env, res vm.Result, err error, asJSON bool) error {
	if res.Output != "" && !asJSON {
		io.WriteString(e.stdout, res.Output)
	}
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(e.stdout, map[string]any{"value": image.ValueToJSON(res.Value), "repr": res.Repr, "output": res.Output})
	}
	if res.Repr != "None" && res.Repr != "" {
		fmt.Fprintln(e.stdout, res.Repr)
	}
	return nil
}
