package gguf

// KV is one metadata key/value pair.
//
// Value holds uint64 for the unsigned integer types, int64 for the signed
// ones, float64 for both float types, bool, string, or []any for an array,
// whose elements are all of type Elem and held the same way.
type KV struct {
	Key   string
	Type  ValueType
	Elem  ValueType // the element type when Type is TypeArray
	Value any
}

// TensorInfo describes one tensor.
type TensorInfo struct {
	Name string
	// Dims is the shape in ggml order: Dims[0] is the row length.
	Dims []uint64
	Type TensorType
	// Offset is where the tensor's data starts, counted from the start of
	// the data section (File.DataOffset).
	Offset uint64
	// Size is the number of bytes of data, or -1 if Type is not known.
	Size int64
}

// File is the structure of a GGUF file: everything but the tensor data.
// A File is not modified by this package's functions, so it may be used
// by several goroutines at once.
type File struct {
	Version   uint32
	Metadata  []KV         // in file order
	Tensors   []TensorInfo // in file order
	Alignment uint64       // general.alignment, or 32
	// DataOffset is where the (aligned) data section starts in the file.
	DataOffset int64
	// Size is how many bytes a complete file has: DataOffset plus the end
	// of the tensor data that ends last (for a tensor of unknown type,
	// just its first byte). A file without tensors ends with its tensor
	// infos. Bytes beyond Size are allowed.
	Size int64
}

// Get returns the metadata pair with the given key.
func (f *File) Get(key string) (KV, bool) {
	for _, kv := range f.Metadata {
		if kv.Key == key {
			return kv, true
		}
	}
	return KV{}, false
}

// String returns the value of a string key.
func (f *File) String(key string) (string, bool) {
	kv, ok := f.Get(key)
	if !ok || kv.Type != TypeString {
		return "", false
	}
	s, ok := kv.Value.(string)
	return s, ok
}

// Uint returns the value of an integer key, of any unsigned type or of a
// signed type when the value is not negative.
func (f *File) Uint(key string) (uint64, bool) {
	kv, ok := f.Get(key)
	if !ok {
		return 0, false
	}
	switch v := kv.Value.(type) {
	case uint64:
		return v, kv.Type.unsigned()
	case int64:
		return uint64(v), kv.Type.signed() && v >= 0
	}
	return 0, false
}

// Float returns the value of a float32 or float64 key.
func (f *File) Float(key string) (float64, bool) {
	kv, ok := f.Get(key)
	if !ok || !kv.Type.float() {
		return 0, false
	}
	v, ok := kv.Value.(float64)
	return v, ok
}

// Architecture returns general.architecture ("llama", "qwen2", ...), or
// "" if the file has none.
func (f *File) Architecture() string {
	s, _ := f.String("general.architecture")
	return s
}

// Type returns general.type: "model" when the key is absent, as in files
// written before the key existed, otherwise "adapter", "mmproj", ...
func (f *File) Type() string {
	if s, ok := f.String("general.type"); ok {
		return s
	}
	return "model"
}

// IsAdapter reports whether general.type is "adapter".
func (f *File) IsAdapter() bool { return f.Type() == "adapter" }

// Tensor returns the info of the tensor with the given name.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	for _, t := range f.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return TensorInfo{}, false
}
