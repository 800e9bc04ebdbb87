package main

import (
	"context"
	"fmt"
	"path/filepath"

	"batos/internal/command"
)

func init() {
	g := &group{name: "model", about: "The base model kept in the image.", subs: []subcommand{
		{"import", "FILE.gguf", "store a GGUF base model in the image", runModelImport, false},
		{"show", "[-json]", "show the base model the image records", runModelShow, false},
	}}
	commands["model"] = cliCommand{"keep the base model in the image: model import FILE.gguf, model show", g.run}
}

func runModelImport(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "model import", "FILE.gguf", `Store a GGUF base model in the image as a blob and record it in pLLM. The file's
header and tensor table are checked first; anything that is not a complete GGUF
model is refused and nothing is stored. Personas that name no model use it.`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("model import needs one FILE.gguf")
	}
	// A server holding the image reads the file itself: give it the
	// whole path.
	path, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		return err
	}
	s, err := openSession(ctx, e, readWrite)
	if err != nil {
		return err
	}
	defer s.Close()
	req := command.ModelImport{Path: path}
	var bar *byteProgress
	if s.local != nil {
		bar = newByteProgress(e, "importing "+fs.Arg(0))
		req.Progress = bar.update
	} else {
		fmt.Fprintf(e.stderr, "importing %s through the running server...\n", fs.Arg(0))
	}
	imp, err := s.ImportModel(ctx, req)
	if bar != nil {
		bar.done()
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "imported %s: %s model %q, %d tensors, %s, %s\n", imp.File, imp.Architecture, imp.Name, imp.Tensors, formatBytes(imp.Size), imp.Digest)
	return nil
}

func runModelShow(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "model show", "[-json]", "Show the base model pLLM records, if any.")
	asJSON := jsonFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	s, err := openSession(ctx, e, readOnly)
	if err != nil {
		return err
	}
	defer s.Close()
	base, err := s.Model(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		if base == nil {
			return printJSON(e.stdout, nil)
		}
		return printJSON(e.stdout, map[string]any{"file": base.File, "name": base.Name, "architecture": base.Architecture, "size": base.Size, "digest": base.Digest})
	}
	if base == nil {
		fmt.Fprintln(e.stdout, "no base model in the image (batos model import FILE.gguf)")
		return nil
	}
	fmt.Fprintf(e.stdout, "%s: %s model %q, %s, %s\n", base.File, base.Architecture, base.Name, formatBytes(base.Size), base.Digest)
	return nil
}
