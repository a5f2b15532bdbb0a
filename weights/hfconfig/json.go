package hfconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"

	"github.com/blip2chat/blip2chat/internal/safefile"
)

// MaxFileBytes bounds the JSON files of a checkpoint that LoadFile reads
// (config.json, preprocessor_config.json, tokenizer_config.json, ...):
// kilobytes in practice, a few MB with a long chat template.
const MaxFileBytes = 64 << 20

// LoadFile reads the regular file at path (a FIFO is refused, never waited
// on) and parses it; a parse error names the file. An absent file gives
// absent() when absent is not nil, and the fs.ErrNotExist error otherwise.
func LoadFile[T any](path string, absent func() T, parse func([]byte) (T, error)) (T, error) {
	var zero T
	data, err := safefile.ReadFile(path, MaxFileBytes)
	if absent != nil && errors.Is(err, fs.ErrNotExist) {
		return absent(), nil
	}
	if err != nil {
		return zero, err
	}
	v, err := parse(data)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// decodeObject decodes a JSON document that must be a single object. Numbers
// are kept as json.Number so integers are read exactly and "64" vs "64.5"
// can be told apart.
func decodeObject(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("invalid JSON: trailing data after the top-level value")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("invalid JSON: top-level value is %s, want an object", kind(v))
	}
	return m, nil
}

// reader reads typed fields out of decoded JSON objects and remembers the
// first error, so parsing code can read many fields and check once.
type reader struct{ err error }

// obj is one JSON object at a dotted path (for error messages).
type obj struct {
	r    *reader
	path string
	m    map[string]any
}

func (r *reader) root(m map[string]any) obj { return obj{r: r, m: m} }

func (o obj) fail(key, format string, args ...any) {
	if o.r.err == nil {
		o.r.err = fmt.Errorf("%s: %s", o.name(key), fmt.Sprintf(format, args...))
	}
}

func (o obj) name(key string) string {
	if o.path == "" {
		return key
	}
	return o.path + "." + key
}

// get returns the value of key; JSON null counts as absent, as transformers
// treats an explicit None like a missing argument.
func (o obj) get(key string) (any, bool) {
	v, ok := o.m[key]
	if !ok || v == nil {
		return nil, false
	}
	return v, true
}

func (o obj) has(key string) bool { _, ok := o.get(key); return ok }

// sub returns the object under key; ok is false when it is absent or null.
func (o obj) sub(key string) (obj, bool) {
	v, ok := o.get(key)
	if !ok {
		return obj{r: o.r, path: o.name(key), m: map[string]any{}}, false
	}
	m, isObj := v.(map[string]any)
	if !isObj {
		o.fail(key, "want an object, got %s", kind(v))
		return obj{r: o.r, path: o.name(key), m: map[string]any{}}, false
	}
	return obj{r: o.r, path: o.name(key), m: m}, true
}

// maxJSONInt bounds integers so later arithmetic on sizes cannot overflow.
const maxJSONInt = 1 << 40

func toInt(v any) (int, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	if i, err := n.Int64(); err == nil {
		if i > maxJSONInt || i < -maxJSONInt {
			return 0, false
		}
		return int(i), true
	}
	// Accept integral floats such as 64.0 or 1e3; reject 64.5.
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || math.Abs(f) > maxJSONInt {
		return 0, false
	}
	return int(f), true
}

// optInt reads an integer; ok is false when absent or null.
func (o obj) optInt(key string) (int, bool) {
	v, ok := o.get(key)
	if !ok {
		return 0, false
	}
	i, isInt := toInt(v)
	if !isInt {
		o.fail(key, "want an integer, got %s", describe(v))
		return 0, false
	}
	return i, true
}

func (o obj) int(key string, def int) int {
	if i, ok := o.optInt(key); ok {
		return i
	}
	return def
}

// ints reads an integer or a list of integers (eos_token_id may be either).
func (o obj) ints(key string) ([]int, bool) {
	v, ok := o.get(key)
	if !ok {
		return nil, false
	}
	if list, isList := v.([]any); isList {
		out := make([]int, 0, len(list))
		for _, e := range list {
			i, isInt := toInt(e)
			if !isInt {
				o.fail(key, "want a list of integers, got element %s", describe(e))
				return nil, false
			}
			out = append(out, i)
		}
		return out, true
	}
	i, isInt := toInt(v)
	if !isInt {
		o.fail(key, "want an integer or a list of integers, got %s", describe(v))
		return nil, false
	}
	return []int{i}, true
}

func (o obj) float(key string, def float64) float64 {
	v, ok := o.get(key)
	if !ok {
		return def
	}
	n, isNum := v.(json.Number)
	if !isNum {
		o.fail(key, "want a number, got %s", describe(v))
		return def
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		o.fail(key, "number %s out of range", n)
		return def
	}
	return f
}

func (o obj) bool(key string, def bool) bool {
	v, ok := o.get(key)
	if !ok {
		return def
	}
	b, isBool := v.(bool)
	if !isBool {
		o.fail(key, "want true or false, got %s", describe(v))
		return def
	}
	return b
}

// optBool is bool for fields whose absence matters (tokenizer flags).
func (o obj) optBool(key string) *bool {
	if !o.has(key) {
		return nil
	}
	b := o.bool(key, false)
	return &b
}

func (o obj) str(key string, def string) string {
	v, ok := o.get(key)
	if !ok {
		return def
	}
	s, isStr := v.(string)
	if !isStr {
		o.fail(key, "want a string, got %s", describe(v))
		return def
	}
	return s
}

func (o obj) strs(key string) []string {
	v, ok := o.get(key)
	if !ok {
		return nil
	}
	list, isList := v.([]any)
	if !isList {
		o.fail(key, "want a list of strings, got %s", describe(v))
		return nil
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, isStr := e.(string)
		if !isStr {
			o.fail(key, "want a list of strings, got element %s", describe(e))
			return nil
		}
		out = append(out, s)
	}
	return out
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// describe names a JSON value for an error message, quoting short scalars.
func describe(v any) string {
	switch x := v.(type) {
	case json.Number:
		return "number " + string(x)
	case string:
		if len(x) > 40 {
			x = x[:40] + "..."
		}
		return fmt.Sprintf("string %q", x)
	case bool:
		return fmt.Sprintf("boolean %v", x)
	}
	return kind(v)
}

// plain converts json.Number values to float64 throughout v, giving the
// same shapes encoding/json produces for map[string]any.
func plain(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return string(x)
		}
		return f
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plain(e)
		}
		return out
	}
	return v
}

// checkRange records an error unless lo <= v <= hi.
func (o obj) checkRange(key string, v, lo, hi int) {
	if v < lo || v > hi {
		if lo == 1 && v < lo {
			o.fail(key, "%d must be positive", v)
			return
		}
		o.fail(key, "%d out of range [%d, %d]", v, lo, hi)
	}
}

// checkPositive records an error unless v > 0 (for epsilons and factors).
func (o obj) checkPositive(key string, v float64) {
	if !(v > 0) {
		o.fail(key, "%g must be positive", v)
	}
}
