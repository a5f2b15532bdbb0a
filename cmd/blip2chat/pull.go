package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/internal/safefile"
	"github.com/blip2chat/blip2chat/weights/hub"
	"github.com/blip2chat/blip2chat/weights/plan"
)

func init() {
	register(&command{
		name:    "pull",
		summary: "download a model from the Hugging Face Hub and install it (see 'blip2chat models')",
		usage:   "NAME|ORG/REPO[@REVISION] [--keep-source] [--vision-type T] [--llm-type T] [--llama-lib DIR]",
		run:     runPull,
	})
	register(&command{
		name:    "models",
		summary: "list the known models and the installed ones",
		usage:   "",
		run:     runModels,
	})
	register(&command{
		name:    "rm",
		summary: "remove an installed model",
		usage:   "NAME",
		run:     runRm,
	})
}

func shortCommit(c string) string { return c[:min(7, len(c))] }

// resolveModelArg turns a -m value (or chat's NAME) into a model folder:
// a folder, or an installed model's name (app.ResolveModel). A known model
// that is not installed is an error naming the pull command to run.
func resolveModelArg(arg string) (string, error) {
	if arg == "" {
		return "", nil
	}
	data, err := app.DataDir()
	if err != nil {
		return arg, nil // no data folder: only folders can be meant
	}
	return app.ResolveModel(data, arg)
}

// pullDiskSpace measures free space for pull's check; nil is the
// operating system's (tests replace it).
var pullDiskSpace hub.DiskSpace

func runPull(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(commands["pull"], stderr)
	keep := fs.Bool("keep-source", false, "keep the downloaded checkpoint in the Hugging Face cache (default: remove the files this pull downloaded once converted)")
	visionType := fs.String("vision-type", "", "vision weight `type` (default: the catalogue's; see 'blip2chat convert -h')")
	llmType := fs.String("llm-type", "", "language model weight `type` (default: the catalogue's; see 'blip2chat convert -h')")
	llamaLib := fs.String("llama-lib", "", "`folder` holding the llama.cpp library (used to quantize to q4_k_m)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errUsage
	}
	if _, _, err := hub.Resolve(pos[0]); err != nil {
		return usageError{err}
	}
	data, err := app.DataDir()
	if err != nil {
		return err
	}
	ctx, stop := interruptContext()
	defer stop()

	bar := newPullBar(stderr, isTerminal(stderr), time.Now)
	res, err := app.Pull(ctx, data, pos[0], app.PullOptions{
		KeepSource: *keep,
		VisionType: *visionType,
		LLMType:    *llmType,
		LlamaLib:   *llamaLib,
		Hub:        hub.Options{Log: bar.log, Space: pullDiskSpace},
		Progress:   bar.update,
		Status:     bar.log,
		// The converter draws its own bar, once the download's is done.
		ConvertProgress: stderr,
		Terminal:        isTerminal(stderr),
		Warnings:        stderr,
	})
	bar.finish()
	if errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "blip2chat pull: interrupted; run the same command again to go on where it stopped\n")
		return exitError{130}
	}
	if err != nil {
		return err
	}
	if res.UpToDate {
		fmt.Fprintf(stdout, "%s is up to date (commit %s) in %s\n", res.Name, shortCommit(res.Commit), safefile.Name(res.Dir))
	} else {
		types := ""
		if im, err := app.FindInstalled(data, res.Name); err == nil && len(im.Types) > 0 {
			types = ": " + strings.Join(im.Types, ", ")
		}
		fmt.Fprintf(stdout, "installed %s (commit %s) in %s (%s%s)\n", res.Name, shortCommit(res.Commit), safefile.Name(res.Dir), plan.FormatBytes(res.Converted), types)
	}
	switch {
	case res.Removed > 0 && res.Kept > 0:
		fmt.Fprintf(stdout, "removed the %s this pull downloaded from the Hugging Face cache; %s fetched before stays in %s\n",
			plan.FormatBytes(res.Removed), plan.FormatBytes(res.Kept), safefile.Name(res.Plan.RepoDir))
	case res.Removed > 0:
		fmt.Fprintf(stdout, "removed the downloaded checkpoint (%s) from the Hugging Face cache (--keep-source keeps it)\n", plan.FormatBytes(res.Removed))
	case res.Kept > 0:
		fmt.Fprintf(stdout, "the checkpoint holds %s in the Hugging Face cache %s (kept; 'hf cache delete' frees it)\n",
			plan.FormatBytes(res.Kept), safefile.Name(res.Plan.RepoDir))
	}
	if im, err := app.FindInstalled(data, res.Name); err == nil && len(im.Types) > 0 && !strings.HasPrefix(im.Types[len(im.Types)-1], "llm") {
		fmt.Fprintf(stdout, "match images with it: blip2chat match -m %s IMAGE --labels 'a cat,a dog'\n", res.Name)
	} else {
		fmt.Fprintf(stdout, "chat with it: blip2chat chat %s IMAGE\n", res.Name)
	}
	return nil
}

func runModels(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(commands["models"], stderr)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return errUsage
	}
	data, err := app.DataDir()
	if err != nil {
		return err
	}
	installed, err := app.Installed(data)
	if err != nil {
		return err
	}
	byName := map[string]app.InstalledModel{}
	for _, im := range installed {
		byName[im.Name] = im
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDOWNLOAD\tCONVERTED\tRAM\tTYPES\tINSTALLED")
	for _, m := range hub.Catalogue() {
		types := m.VisionType
		if m.LLMType != "" {
			types += "/" + m.LLMType
		}
		where := "-"
		if im, ok := byName[m.Name]; ok {
			where = safefile.Name(im.Dir)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, plan.FormatBytes(m.DownloadBytes), plan.FormatBytes(m.ConvertedBytes),
			plan.FormatBytes(m.RAMBytes), types, where)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "\nInstalled in %s:\n", safefile.Name(app.ModelsDir(data)))
	if len(installed) == 0 {
		fmt.Fprintln(stdout, "  none yet: blip2chat pull NAME (or ORG/REPO[@REVISION])")
		return nil
	}
	tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tSIZE ON DISK\tTYPES\tFROM\tPATH")
	for _, im := range installed {
		from := "-"
		if r := im.Record; r != nil && len(r.Commit) >= 7 {
			from = r.Repo + "@" + r.Commit[:7]
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", im.Name, plan.FormatBytes(im.Bytes), strings.Join(im.Types, ", "), from, safefile.Name(im.Dir))
	}
	return tw.Flush()
}

func runRm(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(commands["rm"], stderr)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errUsage
	}
	data, err := app.DataDir()
	if err != nil {
		return err
	}
	im, err := app.FindInstalled(data, pos[0])
	if err != nil {
		return err
	}
	if err := app.Remove(im); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "removed %s (%s) from %s\n", im.Name, plan.FormatBytes(im.Bytes), safefile.Name(im.Dir))
	return nil
}

// pullBar draws a pull's progress on stderr: on a terminal, a bar per file
// being downloaded and one for the total, redrawn in place; otherwise a
// line per finished file and a total line every few seconds.
type pullBar struct {
	mu       sync.Mutex // the Hub client logs from its workers
	w        io.Writer
	terminal bool
	now      func() time.Time
	active   []pullFile // files being downloaded, in the order they began
	last     hub.Progress
	drawn    int       // lines of the live block on screen (terminal)
	lastLine time.Time // of the last total line (line mode)
	started  bool
}

type pullFile struct {
	path        string
	bytes, size int64
}

func newPullBar(w io.Writer, terminal bool, now func() time.Time) *pullBar {
	return &pullBar{w: w, terminal: terminal, now: now}
}

// maxBarFiles bounds the file bars shown at once (the client downloads 4
// files at a time by default).
const maxBarFiles = 6

// log prints a line above the bars.
func (b *pullBar) log(line string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.erase()
	fmt.Fprintln(b.w, escapeControls(line))
	b.draw()
}

func (b *pullBar) update(p hub.Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last, b.started = p, true
	i := -1
	for j, f := range b.active {
		if f.path == p.File {
			i = j
		}
	}
	switch {
	case p.File == "":
	case p.FileDone:
		if i >= 0 {
			b.active = append(b.active[:i], b.active[i+1:]...)
		}
		b.erase()
		fmt.Fprintf(b.w, "  %s %s\n", escapeControls(p.File), plan.FormatBytes(p.FileSize))
		if p.FilesDone == p.Files {
			b.finishLocked() // the download is complete: the total stays above what follows
			return
		}
		b.draw()
		return
	case i >= 0:
		b.active[i].bytes, b.active[i].size = p.FileBytes, p.FileSize
	default:
		b.active = append(b.active, pullFile{p.File, p.FileBytes, p.FileSize})
	}
	if b.terminal {
		b.erase()
		b.draw()
		return
	}
	if now := b.now(); now.Sub(b.lastLine) >= 5*time.Second {
		b.lastLine = now
		fmt.Fprintln(b.w, b.totalLine())
	}
}

// finish leaves the last total on screen.
func (b *pullBar) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.finishLocked()
}

func (b *pullBar) finishLocked() {
	if !b.started {
		return
	}
	b.erase()
	if b.last.Received > 0 || b.terminal {
		fmt.Fprintln(b.w, b.totalLine())
	}
	b.active, b.started = nil, false
}

func (b *pullBar) erase() {
	if !b.terminal || b.drawn == 0 {
		return
	}
	fmt.Fprintf(b.w, "\x1b[%dA\r\x1b[J", b.drawn)
	b.drawn = 0
}

func (b *pullBar) draw() {
	if !b.terminal || !b.started {
		return
	}
	n := 0
	for _, f := range b.active {
		if n == maxBarFiles {
			break
		}
		fmt.Fprintf(b.w, "  %-40s %s %s\n", shorten(f.path, 40), byteBar(f.bytes, f.size, 20), sizes(f.bytes, f.size))
		n++
	}
	fmt.Fprintln(b.w, b.totalLine())
	b.drawn = n + 1
}

func (b *pullBar) totalLine() string {
	p := b.last
	s := fmt.Sprintf("total %s %s, %d/%d files", byteBar(p.Bytes, p.Total, 20), sizes(p.Bytes, p.Total), p.FilesDone, p.Files)
	if p.Rate > 0 {
		s += fmt.Sprintf(", %s/s", plan.FormatBytes(int64(p.Rate)))
	}
	switch {
	case p.Bytes >= p.Total:
	case p.ETA >= 0:
		s += ", ETA " + p.ETA.Round(time.Second).String()
	default:
		s += ", ETA unknown"
	}
	return s
}

// byteBar is a text bar of done out of total, width characters wide.
func byteBar(done, total int64, width int) string {
	fill := width
	if total > 0 {
		fill = int(min(done, total) * int64(width) / total)
	}
	return "[" + strings.Repeat("#", fill) + strings.Repeat(".", width-fill) + "]"
}

func sizes(done, total int64) string {
	pct := 100
	if total > 0 {
		pct = int(min(done, total) * 100 / total)
	}
	return fmt.Sprintf("%s / %s %3d%%", plan.FormatBytes(done), plan.FormatBytes(total), pct)
}

// shorten cuts a path to n characters, keeping its end.
func shorten(s string, n int) string {
	s = escapeControls(s)
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return "…" + string(r[len(r)-n+1:])
}
