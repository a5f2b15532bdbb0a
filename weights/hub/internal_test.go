package hub

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestNextPageElsewhere: a listing whose next page is on another host is
// refused; that host never sees a request (nor the token).
func TestNextPageElsewhere(t *testing.T) {
	var foreign atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { foreign.Add(1) }))
	defer other.Close()
	hubSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "<"+other.URL+"/api/models/a/b/tree/x?cursor=1>; rel=\"next\"")
		w.Write([]byte(`[{"type":"file","path":"config.json","size":2,"oid":"` + strings.Repeat("a", 40) + `"}]`))
	}))
	defer hubSrv.Close()
	c, err := New(Config{Endpoint: hubSrv.URL, CacheDir: t.TempDir(), Token: "hf_x"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.listTree(context.Background(), "a/b", strings.Repeat("c", 40))
	if err == nil || !strings.Contains(err.Error(), "next page is not on") {
		t.Errorf("listTree: %v", err)
	}
	if n := foreign.Load(); n != 0 {
		t.Errorf("the other host got %d requests", n)
	}
}

func TestMeter(t *testing.T) {
	var m Meter
	t0 := time.Unix(1000, 0)
	if m.Rate() != 0 || m.ETA(100) != -1 {
		t.Errorf("empty meter: rate %v eta %v", m.Rate(), m.ETA(100))
	}
	for i := range 11 {
		m.Add(t0.Add(time.Duration(i)*time.Second), int64(i)*1000) // 1000 B/s
	}
	if r := m.Rate(); r != 1000 {
		t.Errorf("rate %v, want 1000", r)
	}
	if len(m.samples) > 7 {
		t.Errorf("%d samples kept for a 5 s window", len(m.samples))
	}
	if eta := m.ETA(5000); eta != 5*time.Second {
		t.Errorf("eta %v, want 5s", eta)
	}
	// The rate follows the last seconds: 3000 B/s now.
	for i := 11; i < 20; i++ {
		m.Add(t0.Add(time.Duration(i)*time.Second), 10000+int64(i-10)*3000)
	}
	if r := m.Rate(); r != 3000 {
		t.Errorf("rate %v, want 3000", r)
	}
	if m.ETA(0) != 0 {
		t.Errorf("eta of nothing: %v", m.ETA(0))
	}
}

func TestNewRejects(t *testing.T) {
	for _, ep := range []string{"ftp://x", "huggingface.co", "https://", "https://x?y=1"} {
		if _, err := New(Config{Endpoint: ep, CacheDir: "/tmp"}, Options{}); err == nil || !strings.Contains(err.Error(), "HF_ENDPOINT") {
			t.Errorf("endpoint %q: %v", ep, err)
		}
	}
	if _, err := New(Config{Endpoint: "https://x"}, Options{}); err == nil {
		t.Error("no cache folder accepted")
	}
}
