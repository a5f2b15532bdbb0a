package generate

import "math"

// TopAlternatives is how many of the most probable tokens TokenProb keeps.
const TopAlternatives = 5

// TokenProb says how sure the model was of one generated token. The
// distribution is the softmax of the raw logits the token was chosen from
// (the row `ask --logits-out` writes), before temperature, the repetition
// penalty or any other processor: what the model thinks, not what the
// decoding settings made of it, so that one answer's numbers compare with
// another's whatever the settings.
type TokenProb struct {
	ID   int32
	Text string  // the token's bytes (a byte-fallback piece may be part of a character)
	P    float64 // its probability
	// Top are the TopAlternatives most probable tokens, best first (the
	// chosen token among them when it is one of them).
	Top []TokenAlt
}

// TokenAlt is one alternative of a TokenProb.
type TokenAlt struct {
	ID   int32
	Text string
	P    float64
}

// distribution is a raw logits row's softmax, summarised: p(id) is
// exp(logit - max) / sum.
type distribution struct {
	max, sum float64
	top      []TokenAlt
}

// summarize computes the softmax of logits in float64 and keeps its
// TopAlternatives best tokens (ties: the lower id first, as an argmax).
func summarize(logits []float32) distribution {
	d := distribution{max: math.Inf(-1)}
	for _, v := range logits {
		d.max = max(d.max, float64(v))
	}
	type pick struct {
		id int32
		v  float32
	}
	var best [TopAlternatives]pick
	n := 0
	for i, v := range logits {
		d.sum += math.Exp(float64(v) - d.max)
		if n == TopAlternatives && !(v > best[n-1].v) {
			continue
		}
		j := min(n, TopAlternatives-1)
		for j > 0 && v > best[j-1].v {
			best[j] = best[j-1]
			j--
		}
		best[j] = pick{int32(i), v}
		n = min(n+1, TopAlternatives)
	}
	d.top = make([]TokenAlt, n)
	for i, b := range best[:n] {
		d.top[i] = TokenAlt{ID: b.id, P: d.p(b.v)}
	}
	return d
}

func (d distribution) p(logit float32) float64 { return math.Exp(float64(logit)-d.max) / d.sum }

// tokenProb is id's TokenProb under the distribution of logits.
func (d distribution) tokenProb(logits []float32, id int32) TokenProb {
	return TokenProb{ID: id, P: d.p(logits[id]), Top: d.top}
}
