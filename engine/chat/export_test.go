package chat

import "github.com/blip2chat/blip2chat/engine/vision"

// What the tests of package chat_test read inside a Chat.

// SoftOf returns the soft tokens of c's image (BLIP-2; for InstructBLIP
// those of the last instruction), nil if none yet.
func SoftOf(c *Chat) []float32 { return c.soft }

// FeaturesOf returns the ViT features of c's image, nil if none.
func FeaturesOf(c *Chat) *vision.ImageFeatures { return c.feat }
