// Package safetensors reads and writes the safetensors tensor format used by
// Hugging Face checkpoints.
//
// A file is an 8-byte little-endian header length, a JSON header mapping each
// tensor name to its dtype, shape and [begin, end) byte range in the data
// section, and the data section itself. Files are memory-mapped read-only and
// only the header is touched when opening, so opening a 15 GB checkpoint is
// instant; tensor bytes are paged in when a caller reads them. Every header is
// validated before use: ranges inside the data section, sizes consistent with
// dtype and shape, no overlaps.
//
// PyTorch pickle checkpoints (*.bin, *.pt, *.pth, ...) are refused on purpose:
// unpickling can run arbitrary code. See ErrPickle.
package safetensors
