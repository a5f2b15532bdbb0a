package chat

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"image"
	"math"
	"slices"
	"time"
	"unsafe"

	"github.com/blip2chat/blip2chat/engine/imageprep"
	"github.com/blip2chat/blip2chat/engine/vision"
)

// The image side of a chat: the image's ViT features (cached for the last
// few images) and the soft tokens made from them.

type cachedFeatures struct {
	key  string
	feat *vision.ImageFeatures
}

// featCacheSize is how many images' ViT features a Chat keeps.
const featCacheSize = 4

// ImageTime is how long the last SetImage took (preparing the image, the
// ViT, and for BLIP-2 the Q-Former and projection); the ViT is skipped
// when the features came from the cache.
func (c *Chat) ImageTime() time.Duration { return c.imageTime }

// SetImage starts a new conversation about img, decoded with imageprep
// (Load or Decode; ToRGB's result is taken without a copy). key names the
// image in the cache of ViT features: the same key means the same image
// (the app passes the file's path, size and modification time), and an
// image met again is not prepared nor encoded again; "" names it by its
// prepared pixels. It stops when ctx is done, between the stages of
// preparing the image and between the layers of the ViT and the Q-Former;
// it then returns ctx's error, and the chat keeps its image and
// conversation as they were (as after any error).
func (c *Chat) SetImage(ctx context.Context, img image.Image, key string) error {
	start := time.Now()
	if c.vis == nil {
		return errors.New("this chat has no vision model")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var px []float32
	if key == "" {
		var err error
		if px, err = imageprep.PixelValues(ctx, img, c.vis.Info().ImageOptions()); err != nil {
			return err
		}
		key = pixelsKey(px)
	}
	i := slices.IndexFunc(c.featCache, func(f cachedFeatures) bool { return f.key == key })
	var feat *vision.ImageFeatures
	if i >= 0 {
		feat = c.featCache[i].feat
	} else {
		var err error
		if px == nil {
			if px, err = imageprep.PixelValues(ctx, img, c.vis.Info().ImageOptions()); err != nil {
				return err
			}
		}
		if feat, err = c.vis.EncodeImage(ctx, px); err != nil {
			return err
		}
	}
	// The features are good whatever happens next: cache them (again, as
	// the most recent).
	c.featCache = slices.DeleteFunc(c.featCache, func(f cachedFeatures) bool { return f.key == key })
	c.featCache = append(c.featCache, cachedFeatures{key: key, feat: feat})
	if len(c.featCache) > featCacheSize {
		c.featCache = c.featCache[1:]
	}
	var soft []float32
	if !c.vis.Info().QFormer.TextInput {
		var err error
		if soft, err = c.vis.SoftTokens(ctx, feat, ""); err != nil {
			return err
		}
	}
	c.feat, c.fixedSoft = feat, false
	c.soft, c.softInstr, c.softN = soft, "", 0
	if soft != nil {
		c.softN = c.vis.Info().NumQueryTokens
	}
	c.imageTime = time.Since(start)
	c.Reset()
	return nil
}

// pixelsKey names prepared pixels in the feature cache.
func pixelsKey(pixels []float32) string {
	h := fnv.New64a()
	h.Write(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(pixels))), 4*len(pixels)))
	return fmt.Sprintf("pixels:%d:%x", len(pixels), h.Sum64())
}

// SetSoftTokens starts a new conversation with given soft tokens (n rows of
// the language model's embedding width) instead of an image: for tests and
// tools that compute them elsewhere.
func (c *Chat) SetSoftTokens(rows []float32, n int) error {
	if n <= 0 || len(rows) != n*c.info.NEmbd {
		return fmt.Errorf("soft tokens: %d floats are not %d rows of %d", len(rows), n, c.info.NEmbd)
	}
	for _, v := range rows {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return errors.New("soft tokens hold NaN or infinity")
		}
	}
	c.soft, c.softN, c.fixedSoft, c.feat = append([]float32(nil), rows...), n, true, nil
	c.Reset()
	return nil
}

// softTokens returns the soft tokens for a turn whose instruction is instr
// (InstructBLIP, whose Q-Former reads it, stopping when ctx is done;
// ignored by BLIP-2) and the time spent making them.
func (c *Chat) softTokens(ctx context.Context, instr string) ([]float32, time.Duration, error) {
	if c.fixedSoft {
		return c.soft, 0, nil
	}
	if c.feat == nil {
		return nil, 0, ErrNoImage
	}
	if c.soft != nil && (!c.vis.Info().QFormer.TextInput || instr == c.softInstr) {
		return c.soft, 0, nil
	}
	start := time.Now()
	soft, err := c.vis.SoftTokens(ctx, c.feat, instr)
	if err != nil {
		return nil, 0, err
	}
	c.soft, c.softInstr, c.softN = soft, instr, c.vis.Info().NumQueryTokens
	return soft, time.Since(start), nil
}

// Attention is where the Q-Former's queries look in the current image:
// the cross-attention probabilities of a Q-Former run over its features
// (InstructBLIP: with the instruction of the last soft tokens made, else
// none). It stops when ctx is done.
func (c *Chat) Attention(ctx context.Context) (*vision.CrossAttention, error) {
	if c.feat == nil {
		return nil, ErrNoImage
	}
	var ids []int
	if c.vis.Info().QFormer.TextInput && c.softInstr != "" {
		var err error
		if ids, err = c.vis.Tokenize(c.softInstr); err != nil {
			return nil, err
		}
	}
	_, att, err := c.vis.QFormerAttention(ctx, c.feat, ids)
	return att, err
}
