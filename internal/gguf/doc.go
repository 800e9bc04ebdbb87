// Package gguf checks and writes GGUF files, the model and adapter format
// of llama.cpp and Ollama.
//
// # Reading
//
// Read parses and validates the whole structure of a file — header,
// metadata, tensor infos and the extent of the tensor data — without
// reading the tensor data itself. It is written for files from outside:
// it never panics, checks every count against the bytes that remain in
// the file before allocating for it, bounds names, arrays, dimensions and
// tensor counts, and checks size arithmetic for overflow. Every problem is
// a *FormatError that says where it is and unwraps to ErrFormat.
//
// # Checking
//
// CheckModel and CheckAdapter say whether a well-formed file is a usable
// base model or LoRA adapter, and Fits whether an adapter can be applied to
// a base model, by the rules llama.cpp applies when it loads one.
//
// # Writing
//
// Write produces GGUF version 3 files from metadata and tensor data; the
// gguftest package uses it to make tiny models and adapters for tests.
//
// # Layout
//
// A file is little-endian: the magic "GGUF", a uint32 version, a uint64
// tensor count, a uint64 metadata count, the metadata key/value pairs, the
// tensor infos (name, dimension count, dimensions, type, offset), padding
// to the alignment (general.alignment, default 32) and the tensor data,
// each tensor at an aligned offset from the start of the data. Strings are
// a uint64 length and that many bytes. Dimensions are in ggml order: the
// first is the row length, the one that varies fastest in memory.
package gguf
