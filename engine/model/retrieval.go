package model

import (
	"errors"
	"fmt"

	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/gguf"
)

// ErrRetrievalModel is returned when a model folder holds an image–text
// retrieval model (Blip2ForImageTextRetrieval: vision.gguf alone, with the
// matching and contrastive heads) where a model that answers is needed.
var ErrRetrievalModel = errors.New("a retrieval model (Blip2ForImageTextRetrieval): it matches images and texts but cannot answer questions; use match, index or search")

// IsRetrieval reports whether the model folder dir holds a retrieval
// model, reading only its vision file's metadata.
func IsRetrieval(dir string) (bool, error) {
	p, err := VisionPath(dir)
	if err != nil {
		return false, err
	}
	return isRetrievalFile(p)
}

func isRetrievalFile(path string) (bool, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, ok := f.Uint32(convert.KeyRetrievalEmbedSize)
	return ok, nil
}

// refuseRetrieval is Open's and Check's error for a retrieval model, nil
// for the others.
func refuseRetrieval(dir, vpath string) error {
	r, err := isRetrievalFile(vpath)
	if err != nil {
		return err
	}
	if r {
		return fmt.Errorf("%s is %w", dir, ErrRetrievalModel)
	}
	return nil
}
