//go:build unix

package hub

import (
	"testing"

	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/lmconv"
)

// The catalogue repeats the converter's default types (the converter does
// not build on Windows); they must not drift apart.
func TestDefaultTypesAreTheConverters(t *testing.T) {
	if defaultVisionType != convert.DefaultVisionType || defaultOPTType != lmconv.OPTDefaultType || defaultLLMType != lmconv.DefaultType {
		t.Errorf("catalogue defaults %s/%s/%s, converter %s/%s/%s", defaultVisionType, defaultOPTType, defaultLLMType,
			convert.DefaultVisionType, lmconv.OPTDefaultType, lmconv.DefaultType)
	}
	if got, want := formatBytes(15_493_505_024), convert.FormatBytes(15_493_505_024); got != want {
		t.Errorf("formatBytes = %q, convert.FormatBytes = %q", got, want)
	}
}
