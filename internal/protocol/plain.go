package protocol

import (
	"fmt"

	"batos/internal/image"
	"batos/internal/store"
)

// Plain is one level of a reply's value in the protocol's plain forms,
// for a transport's encoder: nil, bool, int64, float64, string, []byte,
// image.Ref, []any or map[string]any, whose elements are again to be
// made plain. The image's own values take their documented forms: a
// dict with a key that is not a string is an array of [key, value]
// pairs, a method {"$method": source}, a blob {"$blob", "size"}, a
// primitive {"$primitive": name}. An integer beyond int64 or a type the
// protocol has no form for is an error.
func Plain(v any) (any, error) {
	switch v := v.(type) {
	case nil, image.NoneType:
		return nil, nil
	case bool, int64, float64, string, []byte, image.Ref, []any, map[string]any:
		return v, nil
	case image.Bool:
		return bool(v), nil
	case int:
		return int64(v), nil
	case int8:
		return int64(v), nil
	case int16:
		return int64(v), nil
	case int32:
		return int64(v), nil
	case image.Int:
		return int64(v), nil
	case uint:
		return unsigned(uint64(v))
	case uint8:
		return int64(v), nil
	case uint16:
		return int64(v), nil
	case uint32:
		return int64(v), nil
	case uint64:
		return unsigned(v)
	case float32:
		return float64(v), nil
	case image.Float:
		return float64(v), nil
	case image.String:
		return string(v), nil
	case image.Bytes:
		return []byte(v), nil
	case store.OID:
		return image.Ref(v), nil
	case []string:
		return anySlice(v), nil
	case []map[string]any:
		return anySlice(v), nil
	case []image.Value:
		return anySlice(v), nil
	case image.Tuple:
		return anySlice(v), nil
	case *image.List:
		if v == nil {
			return []any{}, nil
		}
		return anySlice(v.Elems), nil
	case map[string]image.Value:
		return anyMap(v), nil
	case map[string]string:
		return anyMap(v), nil
	case *image.Dict:
		return plainDict(v), nil
	case *image.Method:
		if v == nil {
			return nil, fmt.Errorf("protocol: a nil method has no form")
		}
		return map[string]any{"$method": v.Source}, nil
	case image.BlobRef:
		return map[string]any{"$blob": v.Digest.String(), "size": v.Size}, nil
	case image.Primitive:
		return map[string]any{"$primitive": v.Name}, nil
	}
	return nil, fmt.Errorf("protocol: %T has no form on the wire", v)
}

func unsigned(v uint64) (any, error) {
	if v > 1<<63-1 {
		return nil, fmt.Errorf("protocol: integer %d exceeds the int64 range", v)
	}
	return int64(v), nil
}

func anySlice[T any](s []T) []any {
	out := make([]any, len(s))
	for i, e := range s {
		out[i] = e
	}
	return out
}

func anyMap[T any](m map[string]T) map[string]any {
	out := make(map[string]any, len(m))
	for k, e := range m {
		out[k] = e
	}
	return out
}

// plainDict is a dict whose keys are all strings as a map, any other as
// an array of [key, value] pairs in insertion order.
func plainDict(d *image.Dict) any {
	stringKeys := true
	for k := range d.All() {
		if _, ok := k.(image.String); !ok {
			stringKeys = false
			break
		}
	}
	if stringKeys {
		m := make(map[string]any, d.Len())
		for k, v := range d.All() {
			m[string(k.(image.String))] = v
		}
		return m
	}
	pairs := make([]any, 0, d.Len())
	for k, v := range d.All() {
		pairs = append(pairs, []any{k, v})
	}
	return pairs
}
