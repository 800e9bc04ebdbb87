package gguf

import (
	"fmt"
	"strings"
)

// The suffixes of LoRA tensor names: a LoRA adapter holds, for each base
// tensor X it changes, X.lora_a and X.lora_b.
const (
	suffixA = ".lora_a"
	suffixB = ".lora_b"
)

// CheckModel reports whether f is a usable base model: general.type is
// absent or "model", general.architecture is a non-empty string, and the
// file has at least one tensor. The error wraps ErrNotModel.
func CheckModel(f *File) error {
	if err := checkType(f, "model"); err != nil {
		return fmt.Errorf("%w: %v", ErrNotModel, err)
	}
	if err := checkArchitecture(f); err != nil {
		return fmt.Errorf("%w: %v", ErrNotModel, err)
	}
	if len(f.Tensors) == 0 {
		return fmt.Errorf("%w: the file has no tensors", ErrNotModel)
	}
	return nil
}

// CheckAdapter reports whether f is a usable LoRA adapter, by the rules of
// llama.cpp's llama_adapter_lora_init: general.type is "adapter",
// adapter.type is "lora", general.architecture is a non-empty string,
// adapter.lora.alpha, if present, is a float32, and the tensors come in
// pairs X.lora_a and X.lora_b of matching rank (see Fits for the shapes),
// at least one.
// Like llama.cpp it ignores tensors whose names end in "_norm.weight",
// which some converters include and llama.cpp skips. The error wraps
// ErrNotAdapter.
func CheckAdapter(f *File) error {
	_, err := loraPairs(f)
	return err
}

// pair is one LoRA pair: the tensors lora_a and lora_b for base tensor
// base.
type pair struct {
	base  string
	first string // the name of the pair's tensor that comes first in the file
	a, b  TensorInfo
}

// loraPairs checks f as CheckAdapter does and returns its pairs in the
// order of their first tensor in the file.
func loraPairs(f *File) ([]pair, error) {
	if err := checkType(f, "adapter"); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotAdapter, err)
	}
	if s, _ := f.String("adapter.type"); s != "lora" {
		return nil, fmt.Errorf("%w: adapter.type is %s, want \"lora\"", ErrNotAdapter, describe(f, "adapter.type"))
	}
	if err := checkArchitecture(f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotAdapter, err)
	}
	// llama.cpp reads alpha with gguf_get_val_f32, which aborts on any
	// other type.
	if kv, ok := f.Get("adapter.lora.alpha"); ok && kv.Type != TypeFloat32 {
		return nil, fmt.Errorf("%w: adapter.lora.alpha has type %s, want float32", ErrNotAdapter, kv.Type)
	}
	pairs, err := pairUp(f.Tensors)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotAdapter, err)
	}
	if len(pairs) == 0 {
		return nil, fmt.Errorf("%w: the file has no LoRA tensors", ErrNotAdapter)
	}
	return pairs, nil
}

// pairUp groups tensors X.lora_a and X.lora_b and checks that each pair
// is complete and of one rank.
func pairUp(tensors []TensorInfo) ([]pair, error) {
	var pairs []pair
	index := make(map[string]int)
	for _, t := range tensors {
		base, isA := strings.CutSuffix(t.Name, suffixA)
		isB := false
		if !isA {
			base, isB = strings.CutSuffix(t.Name, suffixB)
		}
		switch {
		case (!isA && !isB) && strings.HasSuffix(t.Name, "_norm.weight"):
			continue
		case !isA && !isB:
			return nil, fmt.Errorf("tensor %s is not named X%s or X%s", t.Name, suffixA, suffixB)
		case base == "":
			return nil, fmt.Errorf("tensor %s names no base tensor", t.Name)
		}
		i, ok := index[base]
		if !ok {
			i = len(pairs)
			index[base] = i
			pairs = append(pairs, pair{base: base, first: t.Name})
		}
		if isA {
			pairs[i].a = t
		} else {
			pairs[i].b = t
		}
	}
	for _, p := range pairs {
		if err := p.check(); err != nil {
			return nil, err
		}
	}
	return pairs, nil
}

// ne returns dimension i of t, counting missing dimensions as 1 as ggml
// does.
func ne(t TensorInfo, i int) uint64 {
	if i < len(t.Dims) {
		return t.Dims[i]
	}
	return 1
}

// isTokenEmbd reports whether the pair is for the token embedding, whose
// lora_a and lora_b llama.cpp expects swapped (see llm_build_inp_embd).
func (p pair) isTokenEmbd() bool { return strings.HasSuffix(p.base, "token_embd.weight") }

// check checks that a pair is complete, two-dimensional and of one rank.
func (p pair) check() error {
	switch {
	case p.a.Name == "":
		return fmt.Errorf("tensor %s%s has no matching %s%s", p.base, suffixB, p.base, suffixA)
	case p.b.Name == "":
		return fmt.Errorf("tensor %s%s has no matching %s%s", p.base, suffixA, p.base, suffixB)
	}
	for _, t := range []TensorInfo{p.a, p.b} {
		if ne(t, 2) != 1 || ne(t, 3) != 1 {
			return fmt.Errorf("tensor %s has shape %v, want two dimensions", t.Name, t.Dims)
		}
	}
	// The rank is lora_b's ne0 and, for all but the token embedding,
	// lora_a's ne1.
	rankA := ne(p.a, 1)
	if p.isTokenEmbd() {
		rankA = ne(p.a, 0)
	}
	if rankA != ne(p.b, 0) {
		return fmt.Errorf("tensors %s %v and %s %v have different ranks", p.a.Name, p.a.Dims, p.b.Name, p.b.Dims)
	}
	return nil
}

// Fits reports whether adapter, a LoRA adapter, can be applied to base, a
// model. It checks both with CheckModel and CheckAdapter, then that their
// architectures are equal and that for each pair X.lora_a, X.lora_b, base
// has a tensor X of a compatible shape. A mismatch wraps ErrMismatch and
// names the first misfit tensor, in adapter file order.
//
// The shapes are those llama.cpp's llama_adapter_lora_init checks (read in
// src/llama-adapter.cpp): in ggml order, where X is [n_in, n_out], lora_a
// must be [n_in, r] and lora_b [r, n_out], so that ne0 of lora_a equals
// ne0 of X and ne1 of lora_b equals ne1 of X. For token_embd.weight,
// [n_embd, n_vocab], the two are swapped: lora_a is [r, n_vocab] and
// lora_b [r, n_embd].
func Fits(base, adapter *File) error {
	if err := CheckModel(base); err != nil {
		return fmt.Errorf("base: %w", err)
	}
	pairs, err := loraPairs(adapter)
	if err != nil {
		return err
	}
	if a, b := adapter.Architecture(), base.Architecture(); a != b {
		return fmt.Errorf("%w: adapter architecture %q differs from the base's %q", ErrMismatch, a, b)
	}
	tensors := make(map[string]TensorInfo, len(base.Tensors))
	for _, t := range base.Tensors {
		tensors[t.Name] = t
	}
	for _, p := range pairs {
		x, ok := tensors[p.base]
		if !ok {
			return fmt.Errorf("%w: adapter tensor %s: base has no tensor %s", ErrMismatch, p.first, p.base)
		}
		if err := p.fits(x); err != nil {
			return fmt.Errorf("%w: %v", ErrMismatch, err)
		}
	}
	return nil
}

// fits checks a complete pair's shapes against its base tensor x.
func (p pair) fits(x TensorInfo) error {
	// want lists, per LoRA tensor, which of its dimensions must equal
	// which of x's.
	type want struct {
		t      TensorInfo
		dim, x int
	}
	checks := []want{{p.a, 0, 0}, {p.b, 1, 1}}
	if p.isTokenEmbd() {
		checks = []want{{p.b, 1, 0}, {p.a, 1, 1}}
	}
	for _, c := range checks {
		if ne(c.t, c.dim) != ne(x, c.x) {
			return fmt.Errorf("adapter tensor %s has shape %v but base tensor %s has shape %v: ne%d is %d, want %d",
				c.t.Name, c.t.Dims, x.Name, x.Dims, c.dim, ne(c.t, c.dim), ne(x, c.x))
		}
	}
	return nil
}

// checkType checks general.type: a string equal to want, or absent when
// want is "model".
func checkType(f *File, want string) error {
	kv, ok := f.Get("general.type")
	switch {
	case !ok && want == "model":
		return nil
	case !ok || kv.Type != TypeString || kv.Value != want:
		return fmt.Errorf("general.type is %s, want %q", describe(f, "general.type"), want)
	}
	return nil
}

func checkArchitecture(f *File) error {
	if f.Architecture() == "" {
		return fmt.Errorf("general.architecture is %s, want a name", describe(f, "general.architecture"))
	}
	return nil
}

// describe says what a key holds, for error messages.
func describe(f *File, key string) string {
	kv, ok := f.Get(key)
	switch {
	case !ok:
		return "missing"
	case kv.Type == TypeString:
		s, _ := kv.Value.(string)
		if len(s) > 64 {
			return fmt.Sprintf("%q... (%d bytes)", s[:64], len(s))
		}
		return fmt.Sprintf("%q", s)
	case kv.Type == TypeArray:
		return fmt.Sprintf("an array of %s", kv.Elem)
	}
	return fmt.Sprintf("%v (%s)", kv.Value, kv.Type)
}
