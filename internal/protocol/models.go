package protocol

import (
	"context"

	"batos/internal/command"
)

// The base model commands: model_import reads a GGUF file on the
// server's machine into the image; model_show reads what pLLM records.

func init() {
	commandFields["model_import"] = []string{"path"}
	commandFields["model_show"] = nil
	commands["model_import"] = func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		path, err := stringArg(req, "path", true)
		if err != nil {
			return nil, err
		}
		imp, err := svc.ImportModel(ctx, command.ModelImport{Path: path})
		if err != nil {
			return nil, err
		}
		m := baseModelMap(&imp.BaseModel)
		m["tensors"] = int64(imp.Tensors)
		return m, nil
	}
	commands["model_show"] = func(ctx context.Context, svc command.Service, req map[string]any) (any, error) {
		base, err := svc.Model(ctx)
		if err != nil || base == nil {
			return nil, err
		}
		return baseModelMap(base), nil
	}
}

func baseModelMap(b *command.BaseModel) map[string]any {
	return map[string]any{"file": b.File, "name": b.Name, "architecture": b.Architecture, "digest": b.Digest, "size": b.Size}
}

func baseModelOf(x any) *command.BaseModel {
	m, ok := x.(map[string]any)
	if !ok {
		return nil
	}
	size, _ := m["size"].(int64)
	return &command.BaseModel{File: str(m["file"]), Name: str(m["name"]), Architecture: str(m["architecture"]), Digest: str(m["digest"]), Size: size}
}

// ImportModel waits as long as a pack does: the server copies the whole
// file into the image. req.Path is a path on the server's machine;
// req.Progress is not told.
func (r *Remote) ImportModel(ctx context.Context, req command.ModelImport) (command.ImportedModel, error) {
	res, err := r.callFor(ctx, packTimeout, "model_import", map[string]any{"path": req.Path})
	if err != nil {
		return command.ImportedModel{}, err
	}
	imp := command.ImportedModel{}
	if b := baseModelOf(res); b != nil {
		imp.BaseModel = *b
	}
	if m, ok := res.(map[string]any); ok {
		n, _ := m["tensors"].(int64)
		imp.Tensors = int(n)
	}
	return imp, nil
}

func (r *Remote) Model(ctx context.Context) (*command.BaseModel, error) {
	res, err := r.call(ctx, "model_show", nil)
	if err != nil {
		return nil, err
	}
	return baseModelOf(res), nil
}
