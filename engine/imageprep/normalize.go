package imageprep

import "image"

// Normalize returns the pixel values of img as float32 in [3, H, W]
// channels-first order: (u8*RescaleFactor - Mean[c]) / Std[c], computed in
// float32 like numpy does in the reference pipeline. When RescaleFactor is
// 1/255 the sample is divided by 255 instead of multiplied by the rounded
// reciprocal, as numpy's u8/255.0 does, so results match to the last bit.
func Normalize(img *image.NRGBA, o Options) []float32 {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := make([]float32, 3*w*h)
	div255 := o.RescaleFactor == float32(1.0/255.0)
	var lut [3][256]float32
	for c := 0; c < 3; c++ {
		for v := 0; v < 256; v++ {
			var x float32
			if div255 {
				x = float32(v) / 255
			} else {
				x = float32(v) * o.RescaleFactor
			}
			lut[c][v] = (x - o.Mean[c]) / o.Std[c]
		}
	}
	plane := w * h
	for y := 0; y < h; y++ {
		row := img.Pix[img.PixOffset(b.Min.X, b.Min.Y+y):]
		for x := 0; x < w; x++ {
			i := y*w + x
			out[i] = lut[0][row[x*4]]
			out[plane+i] = lut[1][row[x*4+1]]
			out[2*plane+i] = lut[2][row[x*4+2]]
		}
	}
	return out
}
