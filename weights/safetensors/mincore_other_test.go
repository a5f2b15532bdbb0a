//go:build !linux

package safetensors

import "errors"

func residentPages(b []byte) (int, error) { return 0, errors.New("mincore not supported") }
