package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"batos/internal/command"
	"batos/internal/image"
	"batos/internal/protocol"
	"batos/internal/store"
)

// The API's JSON is the protocol's plain data (docs/protocol.md) with the
// forms JSON lacks spelled as tagged objects: an object reference is
// {"$ref": "oid:7"}, bytes are {"$bin": "<base64>"}, a float that is not
// finite is {"$float": "NaN" | "+Inf" | "-Inf"}. A float is always written
// with a fraction or an exponent (1.0, not 1), so a client can tell it
// from an integer.

// Limits bound a request body.
type Limits struct {
	MaxBytes int // the body, in bytes
	MaxDepth int // nesting of arrays and objects
	MaxItems int // array elements and object entries, all together
}

// DefaultLimits are the bridge's.
var DefaultLimits = Limits{MaxBytes: 1 << 20, MaxDepth: 32, MaxItems: 100_000}

// decodeArgs reads a request body: one JSON object (empty for none), its
// values as the protocol's plain data. Errors wrap command.ErrBadRequest.
func decodeArgs(body []byte, lim Limits) (map[string]any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return map[string]any{}, nil
	}
	if !utf8.Valid(body) {
		// JSON is UTF-8; Go's decoder would quietly make the bad bytes
		// U+FFFD, and the request would run on text the client never sent.
		return nil, fmt.Errorf("%w: the body is not valid UTF-8", command.ErrBadRequest)
	}
	d := &jsonDecoder{dec: json.NewDecoder(bytes.NewReader(body)), lim: lim}
	d.dec.UseNumber()
	v, err := d.value(0)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", command.ErrBadRequest, err)
	}
	if _, err := d.dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: bytes after the request's object", command.ErrBadRequest)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: the body must be a JSON object of the command's arguments, got %s", command.ErrBadRequest, kindOf(v))
	}
	return m, nil
}

type jsonDecoder struct {
	dec   *json.Decoder
	lim   Limits
	items int
}

func (d *jsonDecoder) count() error {
	d.items++
	if d.items > d.lim.MaxItems {
		return fmt.Errorf("more than %d items", d.lim.MaxItems)
	}
	return nil
}

func (d *jsonDecoder) value(depth int) (any, error) {
	tok, err := d.dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, errors.New("the body ends before its value does")
		}
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	switch t := tok.(type) {
	case nil, bool, string:
		return t, nil
	case json.Number:
		return number(t)
	case json.Delim:
		if depth >= d.lim.MaxDepth {
			return nil, fmt.Errorf("nested deeper than %d levels", d.lim.MaxDepth)
		}
		if t == '[' {
			list := []any{}
			for d.dec.More() {
				if err := d.count(); err != nil {
					return nil, err
				}
				v, err := d.value(depth + 1)
				if err != nil {
					return nil, err
				}
				list = append(list, v)
			}
			_, err := d.dec.Token() // ]
			return list, err
		}
		m := map[string]any{}
		for d.dec.More() {
			if err := d.count(); err != nil {
				return nil, err
			}
			kt, err := d.dec.Token()
			if err != nil {
				return nil, fmt.Errorf("not JSON: %v", err)
			}
			k, _ := kt.(string)
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("key %q appears twice", clip(k))
			}
			if m[k], err = d.value(depth + 1); err != nil {
				return nil, err
			}
		}
		if _, err := d.dec.Token(); err != nil { // }
			return nil, err
		}
		return tagged(m)
	}
	return nil, fmt.Errorf("unexpected %v", tok)
}

// number reads a JSON number: an integer (no fraction, no exponent)
// within int64 is an int64, any other a float64.
func number(n json.Number) (any, error) {
	s := n.String()
	if !strings.ContainsAny(s, ".eE") {
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("integer %s is beyond int64", clip(s))
		}
		return i, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("number %s is out of range", clip(s))
	}
	return f, nil
}

// tagged reads the tagged objects: {"$ref": "oid:7"} a reference,
// {"$bin": base64} bytes, {"$float": "NaN"} a float JSON cannot write;
// any other object is a map.
func tagged(m map[string]any) (any, error) {
	if len(m) != 1 {
		return m, nil
	}
	for k, v := range m {
		s, isString := v.(string)
		switch k {
		case "$ref":
			if !isString {
				return nil, errors.New(`"$ref" takes a string such as "oid:7"`)
			}
			oid, err := store.ParseOID(s)
			if err != nil {
				return nil, fmt.Errorf(`"$ref": bad OID %q: want oid:N, N > 0`, clip(s))
			}
			return image.Ref(oid), nil
		case "$bin":
			if !isString {
				return nil, errors.New(`"$bin" takes base64 text`)
			}
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, fmt.Errorf(`"$bin": not standard base64: %v`, err)
			}
			return b, nil
		case "$float":
			switch s {
			case "NaN":
				return math.NaN(), nil
			case "+Inf", "Inf":
				return math.Inf(1), nil
			case "-Inf":
				return math.Inf(-1), nil
			}
			return nil, errors.New(`"$float" takes "NaN", "+Inf" or "-Inf"`)
		}
	}
	return m, nil
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	}
	return "a number"
}

func clip(s string) string {
	for i := range s {
		if i >= 60 {
			return s[:i] + "…"
		}
	}
	return s
}

// appendJSON writes a reply's plain data as JSON.
func appendJSON(dst []byte, v any, depth int) ([]byte, error) {
	if depth > 100 {
		return nil, errors.New("nested too deep to write")
	}
	p, err := protocol.Plain(v)
	if err != nil {
		return nil, err
	}
	switch v := p.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		return strconv.AppendBool(dst, v), nil
	case int64:
		return strconv.AppendInt(dst, v, 10), nil
	case float64:
		return appendFloat(dst, v), nil
	case string:
		return appendString(dst, v), nil
	case []byte:
		dst = append(dst, `{"$bin":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, v)
		return append(dst, `"}`...), nil
	case image.Ref:
		return append(append(append(dst, `{"$ref":"`...), store.OID(v).String()...), `"}`...), nil
	case []any:
		dst = append(dst, '[')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = appendJSON(dst, e, depth+1); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	case map[string]any:
		dst = append(dst, '{')
		for i, k := range slices.Sorted(maps.Keys(v)) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(appendString(dst, k), ':')
			if dst, err = appendJSON(dst, v[k], depth+1); err != nil {
				return nil, err
			}
		}
		return append(dst, '}'), nil
	}
	return nil, fmt.Errorf("cannot write %T", p)
}

func appendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `{"$float":"NaN"}`...)
	case math.IsInf(f, 1):
		return append(dst, `{"$float":"+Inf"}`...)
	case math.IsInf(f, -1):
		return append(dst, `{"$float":"-Inf"}`...)
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'g', -1, 64)
	if !bytes.ContainsAny(dst[start:], ".eEn") {
		dst = append(dst, ".0"...)
	}
	return dst
}

// appendString writes s as a JSON string; invalid UTF-8 becomes U+FFFD
// (the image's strings are text; a reply never carries invalid JSON).
func appendString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // escapes <, >, & too: safe inside HTML
	return append(dst, b...)
}
