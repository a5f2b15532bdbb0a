package opt

import (
	"github.com/blip2chat/blip2chat/engine/lm"
)

var (
	_ lm.Model          = (*Model)(nil)
	_ lm.Context        = (*Context)(nil)
	_ lm.PromptAppender = (*Context)(nil)
)
