package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/engine/model"
	"github.com/blip2chat/blip2chat/internal/safefile"
)

func init() {
	register(&command{
		name:    "batch",
		summary: "answer prompts under settings about many images, with one or more models (JSON Lines, captions, a report)",
		usage:   "-m MODEL_DIR [-m MODEL_DIR…] [--prompt TEXT…|--prompts FILE] [--preset NAME…] [--set SETTING…] [--out FILE.jsonl] [--captions] [--report FILE.html|.md] IMAGE|FOLDER…",
		run:     runBatch,
	})
}

// listFlag is a repeatable flag; settings share one so that --preset and
// --set keep their order on the command line.
type listFlag struct {
	vals   *[]string
	prefix string // prepended to each value
}

func (l listFlag) String() string {
	if l.vals == nil {
		return ""
	}
	return strings.Join(*l.vals, ", ")
}

func (l listFlag) Set(v string) error {
	*l.vals = append(*l.vals, l.prefix+v)
	return nil
}

// batchImageExts are the file types a folder's images are found by
// (what imageprep decodes).
var batchImageExts = []string{".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp"}

// batchTest lets tests see each model's Batch once it ran (its counts of
// ViT and Q-Former runs) and act after each answer is written.
var batchTest struct {
	ran      func(*app.Batch)
	answered func()
}

// batchArgs are batch's arguments, checked.
type batchArgs struct {
	models, prompts, reports []string
	settings                 []app.Setting
	images                   []string
	out, captionExt          string
	captions, overwrite      bool
	exact, quiet             bool
	llamaLib                 string
	threads, gpuLayers       int
	verbose                  bool
}

func parseBatch(args []string, stderr io.Writer) (a batchArgs, err error) {
	fs := newFlagSet(commands["batch"], stderr)
	var settingSpecs []string
	fs.Var(listFlag{vals: &a.models}, "m", "model `folder` (written by 'blip2chat convert'); repeat for several models, run one after the other")
	fs.Var(listFlag{vals: &a.prompts}, "prompt", "a question or instruction (repeatable; \"\" asks for a caption); {file}, {stem} and {dir} stand for the image's file name, name without extension and folder")
	promptsFile := fs.String("prompts", "", "read prompts from this `file`, one a line (blank lines skipped)")
	fs.Var(listFlag{vals: &settingSpecs, prefix: "preset:"}, "preset", "a decoding `preset` to try (repeatable): reference, caption, vqa, instruct, creative")
	fs.Var(listFlag{vals: &settingSpecs}, "set", "a `setting` to try (repeatable): a preset and /set changes, as \"vqa max_tokens=5\" or \"num_beams=1\"")
	out := fs.String("out", "", "append the answers to this JSON Lines `file`; rerunning the command skips the answers it holds (default: print them)")
	captions := fs.Bool("captions", false, "write each image's answer to a caption file beside it (IMAGE.txt); images that have one are skipped")
	captionExt := fs.String("caption-ext", ".txt", "caption file `extension`")
	overwrite := fs.Bool("overwrite", false, "--captions: replace caption files that exist")
	fs.Var(listFlag{vals: &a.reports}, "report", "write a report of the grid: `FILE`.html (self-contained) or FILE.md (repeatable)")
	exact := fs.Bool("exact", false, "flash attention off and an f32 KV cache: slower, for comparing numbers")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	llamaLib := fs.String("llama-lib", "", "llama.cpp library `folder` (default: $"+"BLIP2CHAT_LLAMA_LIB, lib/ beside the executable, the user data folder)")
	threads := fs.Int("threads", 0, "CPU `threads` (default: the usable cores, at most 16)")
	verbose := fs.Bool("v", false, "print llama.cpp's log to stderr")
	gpu := addGPULayersFlag(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return a, err
	}
	if len(pos) == 0 || len(a.models) == 0 {
		return a, errUsage
	}
	if *threads < 0 {
		return a, badUsage("--threads %d is negative", *threads)
	}
	a.threads = capThreads("batch", *threads, stderr)
	a.out, a.captions, a.captionExt, a.overwrite = *out, *captions, *captionExt, *overwrite
	a.exact, a.quiet, a.llamaLib, a.gpuLayers, a.verbose = *exact, *quiet, *llamaLib, *gpu, *verbose
	for i, m := range a.models {
		a.models[i] = filepath.Clean(m)
	}
	a.models = dedupe(a.models)
	if *promptsFile != "" {
		data, err := safefile.ReadFile(*promptsFile, 16<<20)
		if err != nil {
			return a, err
		}
		for _, line := range strings.Split(string(data), "\n") {
			if line = strings.TrimRight(line, "\r"); strings.TrimSpace(line) != "" {
				a.prompts = append(a.prompts, line)
			}
		}
		if len(a.prompts) == 0 {
			return a, badUsage("--prompts %s holds no prompt", safefile.Name(*promptsFile))
		}
	}
	if len(a.prompts) == 0 {
		a.prompts = []string{""} // the model's caption
	}
	a.prompts = dedupe(a.prompts)
	if len(settingSpecs) == 0 {
		settingSpecs = []string{"reference"}
		if a.captions {
			settingSpecs = []string{"caption"}
		}
	}
	seen := map[string]bool{}
	for _, spec := range settingSpecs {
		s, err := app.ParseSetting(strings.TrimPrefix(spec, "preset:"))
		if err != nil {
			flagName := "--set"
			if strings.HasPrefix(spec, "preset:") {
				flagName = "--preset"
			}
			return a, badUsage("%s %v", flagName, err)
		}
		if !seen[s.String()] {
			seen[s.String()] = true
			a.settings = append(a.settings, s)
		}
	}
	if a.captions {
		if n := len(a.models) * len(a.prompts) * len(a.settings); n != 1 {
			return a, badUsage("--captions writes one caption per image: give one model, one prompt and one setting (not %d combinations)", n)
		}
		if !strings.HasPrefix(a.captionExt, ".") || strings.ContainsAny(a.captionExt, `/\`) || len(a.captionExt) < 2 {
			return a, badUsage("--caption-ext %q: want an extension such as .txt", a.captionExt)
		}
	} else if *overwrite || fs.Lookup("caption-ext").Value.String() != ".txt" {
		return a, badUsage("--overwrite and --caption-ext go with --captions")
	}
	for _, r := range a.reports {
		if ext := strings.ToLower(filepath.Ext(r)); ext != ".html" && ext != ".htm" && ext != ".md" {
			return a, badUsage("--report %s: want a .html or .md file", safefile.Name(r))
		}
	}
	if a.images, err = batchImages(pos); err != nil {
		return a, err
	}
	if len(a.images) == 0 {
		return a, fmt.Errorf("no images in %s (looked for %s)", strings.Join(pos, ", "), strings.Join(batchImageExts, " "))
	}
	return a, nil
}

func dedupe(list []string) []string {
	seen := map[string]bool{}
	return slices.DeleteFunc(list, func(s string) bool {
		dup := seen[s]
		seen[s] = true
		return dup
	})
}

// batchImages lists the images named: files as given, and a folder's
// files with an image extension, sorted (its subfolders are not read).
func batchImages(args []string) ([]string, error) {
	var out []string
	for _, p := range args {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			out = append(out, filepath.Clean(p))
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		var found []string
		for _, e := range ents {
			if !e.IsDir() && slices.Contains(batchImageExts, strings.ToLower(filepath.Ext(e.Name()))) {
				found = append(found, filepath.Join(p, e.Name()))
			}
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return dedupe(out), nil
}

// captionPath is the caption file of an image: its name with the
// extension replaced (kohya's layout: img001.png, img001.txt).
func captionPath(image, ext string) string {
	return strings.TrimSuffix(image, filepath.Ext(image)) + ext
}

func runBatch(args []string, stdout, stderr io.Writer) error {
	a, err := parseBatch(args, stderr)
	if err != nil {
		return err
	}
	// The first Ctrl+C stops after the answer in progress (interruptContext
	// then restores the default: a second one ends the process at once;
	// every answer written is on disk).
	stop, cancel := interruptContext()
	defer cancel()

	var log *app.BatchLog
	if a.out != "" {
		if err := checkBatchOut(a); err != nil {
			return err
		}
		if log, err = app.OpenBatchLog(a.out); err != nil {
			return err
		}
		defer log.Close()
	}
	hasCaption := func(img string) bool {
		_, err := os.Lstat(captionPath(img, a.captionExt))
		return a.captions && !a.overwrite && err == nil
	}
	done := func(k app.BatchKey) bool { return hasCaption(k.Image) || log != nil && log.Done(k) }
	total, hadCaption, written := 0, 0, 0
	for _, m := range a.models {
		for _, img := range a.images {
			if hasCaption(img) {
				hadCaption++
			}
			for _, p := range a.prompts {
				for _, s := range a.settings {
					if !done(app.BatchKey{Image: img, Model: m, Prompt: p, Setting: s.String()}) {
						total++
					}
				}
			}
		}
	}
	var records []app.BatchRecord // this run's, for the report without --out
	prog := newBatchProgress(stderr, total, a.quiet)
	failed, tried := 0, 0
	var runErr error
	for _, dir := range a.models {
		if total == 0 || runErr != nil {
			break
		}
		left := 0 // this model's answers to make
		for _, img := range a.images {
			for _, p := range a.prompts {
				for _, s := range a.settings {
					if !done(app.BatchKey{Image: img, Model: dir, Prompt: p, Setting: s.String()}) {
						left++
					}
				}
			}
		}
		if left == 0 {
			continue
		}
		if stop.Err() != nil {
			runErr = app.ErrBatchStopped
			break
		}
		prog.note("loading " + safefile.Name(dir))
		var logw io.Writer
		if a.verbose {
			logw = stderr
		}
		m, err := model.Open(dir, model.Options{LlamaLib: a.llamaLib, Threads: a.threads, Exact: a.exact, Log: logw, GPULayers: a.gpuLayers})
		if err != nil {
			runErr = withLLMHint(err)
			break
		}
		if n := m.LM.Info().Notice; n != "" {
			prog.note("note: " + n)
		}
		b := &app.Batch{Model: m, ModelName: dir, Images: a.images, Prompts: a.prompts, Settings: a.settings,
			Threads: a.threads, Exact: a.exact, Done: done,
			Working: func(img string) { tried++; prog.image(img) },
			ImageFailed: func(img string, answers int, err error) {
				failed++
				prog.total -= answers
				msg := err.Error()
				if !strings.Contains(msg, img) {
					msg = safefile.Name(img) + ": " + msg
				}
				prog.printf("blip2chat batch: skipped %s", escapeControls(msg))
			},
			Answer: func(r app.BatchRecord) error {
				if a.captions {
					wrote, err := writeCaption(captionPath(r.Image, a.captionExt), r, a.overwrite)
					if err != nil {
						return err
					}
					if wrote {
						written++
					}
				}
				if log != nil {
					if err := log.Write(r); err != nil {
						return err
					}
				} else {
					records = append(records, r)
					if !a.captions {
						line, err := app.MarshalRecord(r)
						if err != nil {
							return err
						}
						if _, err := stdout.Write(line); err != nil {
							return err
						}
					}
				}
				prog.answer()
				if batchTest.answered != nil {
					batchTest.answered()
				}
				return nil
			}}
		runErr = b.Run(stop)
		m.Close()
		if batchTest.ran != nil {
			batchTest.ran(b)
		}
	}
	prog.finish()
	if a.captions {
		fmt.Fprintf(stderr, "blip2chat batch: %d captions written, %d images had one (skipped), %d could not be read\n", written, hadCaption, failed)
	}
	if log != nil {
		records = log.Records()
	}
	for _, path := range a.reports {
		n, err := writeBatchReport(path, a, records)
		if err != nil {
			return err
		}
		if !a.quiet {
			fmt.Fprintf(stderr, "blip2chat batch: wrote %s (%d answers, %s)\n", safefile.Name(path), n.answers, sizeText(n.bytes))
		}
	}
	switch {
	case errors.Is(runErr, app.ErrBatchStopped):
		fmt.Fprintf(stderr, "blip2chat batch: interrupted after %d of %d answers; run the same command again to go on\n", prog.done, total)
		return exitError{130}
	case runErr != nil:
		return runErr
	case tried > 0 && failed == tried:
		return fmt.Errorf("none of the %d images could be read", tried)
	}
	return nil
}

// checkBatchOut vets --out: a regular file (or none yet), not an input.
func checkBatchOut(a batchArgs) error {
	if dir := filepath.Dir(a.out); dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return fmt.Errorf("%s: folder %s does not exist", safefile.Name(a.out), safefile.Name(dir))
		}
	}
	inputs := slices.Clone(a.images)
	for _, m := range a.models {
		inputs = append(inputs, filepath.Join(m, model.VisionFile), filepath.Join(m, model.LLMFile))
	}
	_, err := safefile.CheckTarget(a.out, inputs...)
	return err
}

// writeCaption writes an image's caption file, atomically; an existing
// file is replaced only with overwrite (one that appeared meanwhile is
// kept: wrote is false).
func writeCaption(path string, r app.BatchRecord, overwrite bool) (wrote bool, err error) {
	t, err := safefile.CheckTarget(path, r.Image)
	if err != nil {
		return false, err
	}
	if t.Existing != nil && !overwrite {
		return false, nil
	}
	return true, t.Write([]byte(strings.TrimSpace(r.Answer)+"\n"), 0o644)
}

// reportSize is what a report holds.
type reportSize struct{ answers, bytes int }

func sizeText(n int) string {
	if n < 10<<10 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%d KB", (n+512)>>10)
}

// writeBatchReport writes --report: the answers of this grid found in
// records, as HTML or Markdown by the file's extension (replacing the
// report of an earlier run).
func writeBatchReport(path string, a batchArgs, records []app.BatchRecord) (reportSize, error) {
	want := map[app.BatchKey]bool{}
	for _, m := range a.models {
		for _, img := range a.images {
			for _, p := range a.prompts {
				for _, s := range a.settings {
					want[app.BatchKey{Image: img, Model: m, Prompt: p, Setting: s.String()}] = true
				}
			}
		}
	}
	var grid []app.BatchRecord
	for _, r := range records {
		if want[r.Key()] {
			grid = append(grid, r)
		}
	}
	t, err := safefile.CheckTarget(path, append(slices.Clone(a.images), a.out)...)
	if err != nil {
		return reportSize{}, err
	}
	var data []byte
	if strings.ToLower(filepath.Ext(path)) == ".md" {
		data = app.BatchReportMarkdown(grid)
	} else {
		data = app.BatchReportHTML(grid)
	}
	return reportSize{len(grid), len(data)}, t.Write(data, 0o644)
}

var _ flag.Value = listFlag{}
