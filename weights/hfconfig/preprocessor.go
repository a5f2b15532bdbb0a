package hfconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
)

// Preprocessor is a BlipImageProcessor configuration
// (preprocessor_config.json): resize to Height x Width with the PIL filter
// Resample, scale the 8-bit values by RescaleFactor, then (x-Mean)/Std per
// channel.
type Preprocessor struct {
	Height, Width                                  int
	Mean, Std                                      [3]float32
	RescaleFactor                                  float32
	Resample                                       int // PIL filter: 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming
	DoConvertRGB, DoResize, DoRescale, DoNormalize bool
	ImageProcessorType                             string // e.g. "BlipImageProcessor"; "" when absent
}

// OpenAI CLIP normalization, BlipImageProcessor's default.
var (
	clipMean = [3]float32{0.48145466, 0.4578275, 0.40821073}
	clipStd  = [3]float32{0.26862954, 0.26130258, 0.27577711}
)

// DefaultPreprocessor is BlipImageProcessor's configuration for a ViT that
// takes imageSize x imageSize images. (The processor's own default size,
// 384, matches no BLIP-2 checkpoint; the model's image_size is what works.)
func DefaultPreprocessor(imageSize int) *Preprocessor {
	return &Preprocessor{
		Height: imageSize, Width: imageSize,
		Mean: clipMean, Std: clipStd,
		RescaleFactor: 1.0 / 255,
		Resample:      3,
		DoConvertRGB:  true, DoResize: true, DoRescale: true, DoNormalize: true,
	}
}

// LoadPreprocessor reads dir/preprocessor_config.json. When the file, or its
// size, is absent the size is the vision image_size of dir/config.json (224
// when there is no config.json either) and every other field is
// BlipImageProcessor's default.
func LoadPreprocessor(dir string) (*Preprocessor, error) {
	imageSize := 224
	if c, err := Load(dir); err == nil {
		imageSize = c.Vision.ImageSize
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return LoadFile(filepath.Join(dir, "preprocessor_config.json"),
		func() *Preprocessor { return DefaultPreprocessor(imageSize) },
		func(data []byte) (*Preprocessor, error) { return parsePreprocessor(data, imageSize) })
}

// ParsePreprocessor parses a preprocessor_config.json; imageSize is used when
// the file gives no size.
func ParsePreprocessor(data []byte, imageSize int) (*Preprocessor, error) {
	p, err := parsePreprocessor(data, imageSize)
	if err != nil {
		return nil, fmt.Errorf("hfconfig: preprocessor: %w", err)
	}
	return p, nil
}

func parsePreprocessor(data []byte, imageSize int) (*Preprocessor, error) {
	m, err := decodeObject(data)
	if err != nil {
		return nil, err
	}
	r := &reader{}
	o := r.root(m)
	p := DefaultPreprocessor(imageSize)
	p.DoConvertRGB = o.bool("do_convert_rgb", p.DoConvertRGB)
	p.DoResize = o.bool("do_resize", p.DoResize)
	p.DoRescale = o.bool("do_rescale", p.DoRescale)
	p.DoNormalize = o.bool("do_normalize", p.DoNormalize)
	p.Resample = o.int("resample", p.Resample)
	p.ImageProcessorType = o.str("image_processor_type", "")
	rescale := o.float("rescale_factor", 1.0/255)
	p.RescaleFactor = float32(rescale)
	p.Mean = triple(o, "image_mean", p.Mean)
	p.Std = triple(o, "image_std", p.Std)
	p.Height, p.Width = imageSizeField(o, p.Height, p.Width)
	if r.err != nil {
		return nil, r.err
	}
	o.checkRange("resample", p.Resample, 0, 5)
	o.checkRange("size", p.Height, 1, MaxImageSize)
	o.checkRange("size", p.Width, 1, MaxImageSize)
	if !(rescale > 0) || rescale > 1 {
		o.fail("rescale_factor", "%g out of range (0, 1]", rescale)
	}
	for _, s := range p.Std {
		if !(s > 0) {
			o.fail("image_std", "%v: every entry must be positive", p.Std)
			break
		}
	}
	return p, r.err
}

// triple reads a per-channel value: a list of 3 numbers or one number for all.
func triple(o obj, key string, def [3]float32) [3]float32 {
	v, ok := o.get(key)
	if !ok {
		return def
	}
	list, isList := v.([]any)
	if !isList {
		f := float32(o.float(key, 0))
		return [3]float32{f, f, f}
	}
	if len(list) != 3 {
		o.fail(key, "want 3 numbers (R, G, B), got %d", len(list))
		return def
	}
	var out [3]float32
	for i, e := range list {
		f, ok := finite(e)
		if !ok {
			o.fail(key, "want 3 numbers (R, G, B), got element %s", describe(e))
			return def
		}
		out[i] = float32(f)
	}
	return out
}

func finite(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || math.Abs(f) > math.MaxFloat32 {
		return 0, false
	}
	return f, true
}

// imageSizeField reads "size": an int (square), [height, width],
// {"height", "width"}, or {"shortest_edge"} (taken as a square, as BLIP-2
// always feeds square images).
func imageSizeField(o obj, h, w int) (int, int) {
	v, ok := o.get("size")
	if !ok {
		return h, w
	}
	switch x := v.(type) {
	case []any:
		hw, _ := o.ints("size")
		if len(hw) != 2 {
			o.fail("size", "want [height, width], got %d numbers", len(x))
			return h, w
		}
		return hw[0], hw[1]
	case map[string]any:
		s, _ := o.sub("size")
		if s.has("height") || s.has("width") {
			if !s.has("height") || !s.has("width") {
				o.fail("size", "want both height and width")
				return h, w
			}
			return s.int("height", h), s.int("width", w)
		}
		if s.has("shortest_edge") {
			n := s.int("shortest_edge", h)
			return n, n
		}
		o.fail("size", "want height and width or shortest_edge")
		return h, w
	}
	n := o.int("size", h)
	return n, n
}
