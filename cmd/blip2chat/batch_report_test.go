package main

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/blip2chat/blip2chat/engine/model/modeltest"
)

// chromium finds Debian's headless browser: the test is skipped, saying
// so, when it is missing (CI installs it and sets
// BLIP2CHAT_REQUIRE_CHROMIUM=1, which makes a missing one a failure).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium on PATH: the HTML report is not checked in a browser (apt-get install chromium)"
	if os.Getenv("BLIP2CHAT_REQUIRE_CHROMIUM") != "" {
		t.Fatal(msg + " (BLIP2CHAT_REQUIRE_CHROMIUM is set)")
	}
	t.Skip(msg)
	return ""
}

// runChromium runs the headless browser on the file page with extra
// arguments, cut off from the network (a dead proxy, no name resolution):
// a page that needs anything but itself shows it broken.
func runChromium(t *testing.T, bin, page string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"}
	cmd := exec.CommandContext(ctx, bin, append(append(base, args...), "file://"+page)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// TestBatchReport: the grid's HTML report stands alone (no script, no
// address outside itself) and renders in headless Chromium cut off from
// the network: the screenshot is not blank and every thumbnail loaded;
// the Markdown report is the same table.
func TestBatchReport(t *testing.T) {
	lib := modeltest.LibDir(t)
	c := modeltest.Cases(t, "opt")[0]
	dir := askModelDir(t, c, "f32")
	folder, images := batchImagesFixture(t)
	outDir := t.TempDir()
	htmlPath, mdPath := filepath.Join(outDir, "report.html"), filepath.Join(outDir, "report.md")
	args := []string{"batch", "-m", dir, folder, "--out", filepath.Join(outDir, "r.jsonl"), "--llama-lib", lib, "--threads", "1",
		"--quiet", "--report", htmlPath, "--report", mdPath, "--preset", "reference", "--preset", "vqa"}
	for _, p := range batchPrompts {
		args = append(args, "--prompt", p)
	}
	var stdout, stderr bytes.Buffer
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	page, err := os.ReadFile(htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report.html: %d bytes (%.0f KB) for %d images × 4 columns", len(page), float64(len(page))/1024, len(images))
	low := strings.ToLower(string(page))
	for _, bad := range []string{"<script", "<link", "http:", "https:", "@import", "url("} {
		if strings.Contains(low, bad) {
			t.Errorf("the report holds %q: it must stand alone", bad)
		}
	}
	srcs := regexp.MustCompile(`src="([^"]*)"`).FindAllStringSubmatch(string(page), -1)
	if len(srcs) != len(images) {
		t.Errorf("%d images in the report, want %d thumbnails", len(srcs), len(images))
	}
	for _, s := range srcs {
		if !strings.HasPrefix(s[1], "data:image/jpeg;base64,") {
			t.Errorf("an image from %.40q", s[1])
		}
	}
	md, err := os.ReadFile(mdPath)
	if err != nil {
		t.Fatal(err)
	}
	if rows := strings.Count(string(md), "\n| "); rows != 1+len(images)+1 { // heading, images, timings
		t.Errorf("report.md has %d table rows:\n%s", rows, md)
	}

	bin := chromium(t)
	shot := filepath.Join(t.TempDir(), "shot.png")
	if d := os.Getenv("BLIP2CHAT_TEST_KEEP_SHOT"); d != "" {
		shot = d
	}
	runChromium(t, bin, htmlPath, "--window-size=1400,1000", "--screenshot="+shot)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	colors := map[[3]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colors[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
		}
	}
	// Text alone draws a few hundred shades; photographs thousands.
	t.Logf("screenshot %v: %d colors", b.Size(), len(colors))
	if len(colors) < 1000 {
		t.Errorf("the screenshot has %d colors: blank, or the thumbnails are missing", len(colors))
	}

	// The thumbnails as the browser sees them: a copy of the page with a
	// script that counts the images loaded (the report itself has none).
	probe := filepath.Join(outDir, "probe.html")
	script := `<script>window.addEventListener("load",()=>{const i=[...document.images];` +
		`document.body.setAttribute("data-loaded",i.filter(x=>x.complete&&x.naturalWidth>0).length+"/"+i.length)})</script>`
	if err := os.WriteFile(probe, bytes.Replace(page, []byte("</body>"), []byte(script+"</body>"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	dom := runChromium(t, bin, probe, "--virtual-time-budget=10000", "--dump-dom")
	m := regexp.MustCompile(`data-loaded="(\d+)/(\d+)"`).FindSubmatch(dom)
	if m == nil || string(m[1]) != string(m[2]) || string(m[2]) != "3" {
		t.Errorf("thumbnails loaded: %q, want 3/3", m)
	}
}
