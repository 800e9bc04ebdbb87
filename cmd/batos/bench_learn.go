package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"batos/internal/bench"
	"batos/internal/command"
	"batos/internal/image"
	"batos/internal/mind"
)

const benchLearnHelp = `
Measure how well the mind learns: each mission of a suite is a message an
object does not understand, sent to a fresh image (in a temporary directory
inside DIR) whose mind is the inference server -llm names, else the one the
image (-image) records, else Ollama or llama-server on their default ports. A cycle learns the method; then the
mission's checks say whether it does what was asked. Each mission is reported
correct, wrong (learned, but a check failed) or failed (nothing learned), with
its cycles, attempts, model calls, tokens and time; then the success rate,
per difficulty level and overall, and the median prompt tokens per call of
each persona. -keep DIR keeps each mission's image as DIR/NAME.db, for batos
-image DIR/NAME.db cycle show 1.

The default suite (26 missions, levels 1 to 5: one-liners, state changes,
text and loops, refusals, methods using what the object inherits) is built
in; -suite FILE runs another (the same JSON format; see the README).`

func runBenchLearn(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "bench learn", "[-json] [-suite FILE] [-only A,B] [-keep DIR] [-llm URL -llm-api API -model NAME]", benchLearnHelp)
	opts := bench.LearnOptions{}
	fs.BoolVar(&opts.JSON, "json", false, "print JSON instead of a table")
	fs.StringVar(&opts.Dir, "dir", "", "put the scratch images in a temporary directory inside `DIR` (default: the system's)")
	suiteFile := fs.String("suite", "", "run the missions of this suite `FILE` instead of the built-in one")
	only := fs.String("only", "", "run only these missions (comma-separated names)")
	fs.StringVar(&opts.Keep, "keep", "", "keep each mission's image in `DIR` as NAME.db")
	fs.DurationVar(&opts.Timeout, "timeout", command.DefaultLearnTimeout, "how long each mission may take to learn")
	fs.IntVar(&opts.Attempts, "attempts", 3, "synthesis attempts each cycle gets")
	sf := addServerFlags(fs)
	if err := parseBenchFlags(fs, args); err != nil {
		return err
	}
	if opts.Timeout <= 0 || opts.Attempts < 1 || opts.Attempts > 20 {
		return usageError("bench learn: -timeout must be positive and -attempts 1 to 20")
	}
	if *only != "" {
		opts.Only = strings.Split(*only, ",")
	}
	if *suiteFile != "" {
		f, err := os.Open(*suiteFile)
		if err != nil {
			return err
		}
		defer f.Close()
		if opts.Suite, err = bench.ParseSuite(f); err != nil {
			return fmt.Errorf("%s: %w", *suiteFile, err)
		}
	}
	// Without -llm, the server the image records (when this process can
	// read the image), else the default ports.
	var db *image.DB
	if u, err := awakenImage(ctx, e, readOnly, nil); err == nil {
		defer u.Close()
		db = u.DB()
	}
	cfg, err := sf.config(ctx, db)
	if err != nil {
		return err
	}
	server, err := mind.Connect(ctx, cfg)
	if err != nil {
		return fmt.Errorf("bench learn needs a mind: %w (batos doctor says how to start an inference server)", err)
	}
	opts.Mind = server
	_, err = bench.RunLearn(ctx, opts, e.stdout, e.stderr)
	return err
}
