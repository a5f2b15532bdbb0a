package gguf

import (
	"fmt"
	"math"
)

// Checker checks the metadata values of a File against the ranges a schema
// allows, keeping the first error: the converters run it on what they are
// about to write (ParseMetadata) and the loaders on what they read, with
// the same schema functions, so that a loader refuses whatever the
// converter would not have written (a damaged or crafted file) before it
// sizes anything from it.
type Checker struct {
	f   *File
	err error
}

// NewChecker returns a Checker of f's metadata.
func NewChecker(f *File) *Checker { return &Checker{f: f} }

// Err is the first error, nil if none.
func (c *Checker) Err() error { return c.err }

// Failf records an error unless one is already recorded.
func (c *Checker) Failf(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf(format, args...)
	}
}

// Has reports whether key is present.
func (c *Checker) Has(key string) bool {
	_, ok := c.f.Value(key)
	return ok
}

// Int returns the integer value of key, which must be present and lie in
// [lo, hi].
func (c *Checker) Int(key string, lo, hi int) int {
	v, ok := c.f.Value(key)
	if !ok {
		c.Failf("metadata %s is missing", key)
		return 0
	}
	return c.intValue(key, v, lo, hi)
}

// OptInt is Int for an optional key: def when absent.
func (c *Checker) OptInt(key string, def, lo, hi int) int {
	v, ok := c.f.Value(key)
	if !ok {
		return def
	}
	return c.intValue(key, v, lo, hi)
}

func (c *Checker) intValue(key string, v any, lo, hi int) int {
	n, ok := toInt64(v)
	if !ok {
		if _, isInt := v.(uint64); isInt {
			c.Failf("metadata %s = %v is out of range [%d, %d]", key, v, lo, hi)
		} else {
			c.Failf("metadata %s is %T, not an integer", key, v)
		}
		return 0
	}
	if n < int64(lo) || n > int64(hi) {
		c.Failf("metadata %s = %d is out of range [%d, %d]", key, n, lo, hi)
		return 0
	}
	return int(n)
}

// Ints checks an integer key that may also be an array of one value per
// layer (llama.cpp allows both for head counts): every value in [lo, hi].
// It returns the first value (0 when absent and not required).
func (c *Checker) Ints(key string, required bool, lo, hi int) int {
	v, ok := c.f.Value(key)
	switch {
	case !ok && required:
		c.Failf("metadata %s is missing", key)
		return 0
	case !ok:
		return 0
	}
	if _, scalar := toInt64(v); scalar {
		return c.intValue(key, v, lo, hi)
	}
	vs, ok := c.f.Int32s(key)
	if !ok || len(vs) == 0 {
		c.Failf("metadata %s is %T, not an integer or an array of integers", key, v)
		return 0
	}
	for i, n := range vs {
		if int(n) < lo || int(n) > hi {
			c.Failf("metadata %s[%d] = %d is out of range [%d, %d]", key, i, n, lo, hi)
			return 0
		}
	}
	return int(vs[0])
}

// Float returns the float value of key, which must be present, finite and
// in [lo, hi] (in (lo, hi] when openLo: a norm epsilon of 0 divides by
// zero).
func (c *Checker) Float(key string, lo, hi float64, openLo bool) float32 {
	if !c.Has(key) {
		c.Failf("metadata %s is missing", key)
		return 0
	}
	return c.OptFloat(key, 0, lo, hi, openLo)
}

// OptFloat is Float for an optional key: def when absent.
func (c *Checker) OptFloat(key string, def float32, lo, hi float64, openLo bool) float32 {
	v, ok := c.f.Value(key)
	if !ok {
		return def
	}
	f, ok := c.f.Float32(key)
	if !ok {
		c.Failf("metadata %s is %T, not a number", key, v)
		return 0
	}
	c.checkFloat(key, float64(f), lo, hi, openLo)
	return f
}

// Floats checks a float array of n values (n < 0: any length), each
// finite and in [lo, hi] (or (lo, hi] when openLo).
func (c *Checker) Floats(key string, n int, lo, hi float64, openLo bool) []float32 {
	vs, ok := c.f.Float32s(key)
	switch {
	case !ok && !c.Has(key):
		c.Failf("metadata %s is missing", key)
		return nil
	case !ok || (n >= 0 && len(vs) != n):
		c.Failf("metadata %s must be %d floats", key, n)
		return nil
	}
	for i, f := range vs {
		c.checkFloat(fmt.Sprintf("%s[%d]", key, i), float64(f), lo, hi, openLo)
	}
	return vs
}

func (c *Checker) checkFloat(key string, f, lo, hi float64, openLo bool) {
	bad := math.IsNaN(f) || math.IsInf(f, 0) || f < lo || f > hi || (openLo && f == lo)
	if !bad {
		return
	}
	left := "["
	if openLo {
		left = "("
	}
	c.Failf("metadata %s = %g: must be a finite number in %s%g, %g]", key, f, left, lo, hi)
}

// String returns the string value of key, which must be present and, when
// allowed is not empty, one of allowed.
func (c *Checker) String(key string, allowed ...string) string {
	s, ok := c.f.String(key)
	if !ok {
		if c.Has(key) {
			c.Failf("metadata %s is not a string", key)
		} else {
			c.Failf("metadata %s is missing", key)
		}
		return ""
	}
	if len(allowed) == 0 {
		return s
	}
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	c.Failf("metadata %s = %q: want one of %q", key, s, allowed)
	return s
}

// Bool returns the bool value of key, which must be present.
func (c *Checker) Bool(key string) bool {
	b, ok := c.f.Bool(key)
	if !ok {
		c.Failf("metadata %s is missing or not a bool", key)
	}
	return b
}
