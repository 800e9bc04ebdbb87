package gguf

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers test for them with errors.Is.
var (
	// ErrFormat is wrapped by *FormatError: the bytes are not a valid
	// GGUF file.
	ErrFormat = errors.New("gguf: not a valid GGUF file")
	// ErrNotModel is returned by CheckModel for a well-formed file that is
	// not a usable base model.
	ErrNotModel = errors.New("gguf: not a usable model")
	// ErrNotAdapter is returned by CheckAdapter (and Fits) for a
	// well-formed file that is not a usable LoRA adapter.
	ErrNotAdapter = errors.New("gguf: not a usable LoRA adapter")
	// ErrMismatch is returned by Fits when an adapter was made for a
	// different base model.
	ErrMismatch = errors.New("gguf: adapter does not fit the base model")
)

// FormatError reports what is wrong with a file and where.
type FormatError struct {
	Offset int64  // where the offending item starts in the file
	Msg    string // what is wrong, naming the item
}

// Error returns "gguf: offset N: " and the message.
func (e *FormatError) Error() string {
	return fmt.Sprintf("gguf: offset %d: %s", e.Offset, e.Msg)
}

// Unwrap returns ErrFormat.
func (e *FormatError) Unwrap() error { return ErrFormat }
