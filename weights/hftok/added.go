package hftok

import (
	"encoding/json"
	"sort"
)

// ParseAddedTokensJSON parses an added_tokens.json ({"content": id, ...}),
// sorted by id, then content (two names for one id keep a stable order).
func ParseAddedTokensJSON(data []byte) ([]AddedToken, error) {
	var m map[string]int
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	out := make([]AddedToken, 0, len(m))
	for k, v := range m {
		out = append(out, AddedToken{ID: v, Content: k})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].Content < out[j].Content
	})
	return out, nil
}

// LoadAddedTokensJSON reads an added_tokens.json (see ParseAddedTokensJSON).
func LoadAddedTokensJSON(path string) ([]AddedToken, error) {
	return load(path, ParseAddedTokensJSON)
}
