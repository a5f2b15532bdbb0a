package hub

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DefaultEndpoint is the Hub's address when HF_ENDPOINT is not set.
const DefaultEndpoint = "https://huggingface.co"

// Config is where the Hub and the cache are and who the user is: what
// huggingface_hub reads from its environment variables.
type Config struct {
	// Endpoint is the Hub's base URL, without a trailing slash
	// (HF_ENDPOINT).
	Endpoint string
	// CacheDir is the hub cache: HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE,
	// else $HF_HOME/hub, with HF_HOME defaulting to
	// $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface.
	CacheDir string
	// Token is sent as "Authorization: Bearer" to Endpoint's host only:
	// HF_TOKEN, else HUGGING_FACE_HUB_TOKEN, else the token file
	// (HF_TOKEN_PATH, default $HF_HOME/token). "" sends none.
	Token string
	// Offline resolves everything from the cache and sends no request
	// (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE set to 1, ON, YES or TRUE).
	Offline bool
	// Timeout is how long a request may wait for response headers or go
	// without receiving a byte before it is retried
	// (HF_HUB_DOWNLOAD_TIMEOUT, seconds; default 10 s).
	Timeout time.Duration
}

// DefaultTimeout is Config.Timeout when HF_HUB_DOWNLOAD_TIMEOUT is not set.
const DefaultTimeout = 10 * time.Second

// ConfigFromEnv reads the configuration from the environment, as
// huggingface_hub does.
func ConfigFromEnv() (Config, error) {
	getenv := func(k string) string { return os.Getenv(k) }
	home := getenv("HF_HOME")
	if home == "" {
		xdg := getenv("XDG_CACHE_HOME")
		if xdg == "" {
			h, err := os.UserHomeDir()
			if err != nil {
				return Config{}, fmt.Errorf("finding the Hugging Face cache: %v (set HF_HOME or HF_HUB_CACHE)", err)
			}
			xdg = filepath.Join(h, ".cache")
		}
		home = filepath.Join(xdg, "huggingface")
	}
	home = expandPath(home)
	cfg := Config{
		Endpoint: strings.TrimRight(getenv("HF_ENDPOINT"), "/"),
		CacheDir: firstNonEmpty(getenv("HF_HUB_CACHE"), getenv("HUGGINGFACE_HUB_CACHE")),
		Offline:  envTrue(getenv("HF_HUB_OFFLINE")) || envTrue(getenv("TRANSFORMERS_OFFLINE")),
		Timeout:  DefaultTimeout,
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = DefaultEndpoint
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = filepath.Join(home, "hub")
	}
	cfg.CacheDir = expandPath(cfg.CacheDir)
	if s := getenv("HF_HUB_DOWNLOAD_TIMEOUT"); s != "" {
		sec, err := strconv.ParseFloat(s, 64)
		if err != nil || sec <= 0 {
			return Config{}, fmt.Errorf("HF_HUB_DOWNLOAD_TIMEOUT=%q: want a number of seconds", s)
		}
		cfg.Timeout = time.Duration(sec * float64(time.Second))
	}

	cfg.Token = cleanToken(firstNonEmpty(getenv("HF_TOKEN"), getenv("HUGGING_FACE_HUB_TOKEN")))
	if cfg.Token == "" {
		path := getenv("HF_TOKEN_PATH")
		if path == "" {
			path = filepath.Join(home, "token")
		}
		b, err := os.ReadFile(expandPath(path))
		switch {
		case err == nil:
			cfg.Token = cleanToken(string(b))
		case !errors.Is(err, fs.ErrNotExist):
			return Config{}, fmt.Errorf("reading the Hugging Face token: %v", err)
		}
	}
	return cfg, nil
}

// cleanToken drops line breaks and surrounding blanks, as huggingface_hub
// does.
func cleanToken(s string) string {
	return strings.TrimSpace(strings.NewReplacer("\r", "", "\n", "").Replace(s))
}

func envTrue(s string) bool {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// expandPath expands a leading ~ and $VARIABLES, as Python's expanduser
// and expandvars do for huggingface_hub's paths.
func expandPath(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") || strings.HasPrefix(p, `~\`) {
		if h, err := os.UserHomeDir(); err == nil {
			p = h + p[1:]
		}
	}
	return os.Expand(p, func(k string) string {
		if v, ok := os.LookupEnv(k); ok {
			return v
		}
		return "$" + k // expandvars leaves unknown variables as they are
	})
}
