package command

import (
	"context"
	"errors"
	"io/fs"

	"batos/internal/mind"
)

// ModelImport is a GGUF base model file to keep in the image.
type ModelImport struct {
	// Path is the file, read by the process holding the image.
	Path string
	// Progress is told how the copy goes. Only a local service reports
	// it; a remote import reports nothing until it is done.
	Progress mind.Progress
}

// ImportedModel is what a model import stored.
type ImportedModel struct {
	BaseModel
	Tensors int
}

// ImportModel checks that the file is a complete GGUF base model, copies
// it into the image as a blob and records it in pLLM, where personas that
// name no model of their own find it. A file that is not one is a
// bad_request, and nothing is stored.
func (l *Local) ImportModel(ctx context.Context, req ModelImport) (ImportedModel, error) {
	if req.Path == "" {
		return ImportedModel{}, badRequest("a model import needs the path of a GGUF file")
	}
	imp, err := mind.ImportWeights(withTopic(ctx, TopicModel), l.rt.DB(), req.Path, req.Progress)
	err = fileError("model", err)
	if errors.Is(err, mind.ErrNotGGUF) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		err = WithKind(ErrBadRequest, err)
	}
	if err != nil {
		return ImportedModel{}, err
	}
	return ImportedModel{BaseModel: BaseModel{File: imp.File, Name: imp.Name, Architecture: imp.Architecture,
		Digest: imp.Blob.Digest.String(), Size: imp.Blob.Size}, Tensors: imp.Tensors}, nil
}

// Model is the base model the image keeps, or nil.
func (l *Local) Model(ctx context.Context) (*BaseModel, error) { return baseModel(ctx, l) }
