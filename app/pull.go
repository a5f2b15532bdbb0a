package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/blip2chat/blip2chat/engine/llamacpp/capi"
	"github.com/blip2chat/blip2chat/engine/model"
	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
	"github.com/blip2chat/blip2chat/weights/hub"
	"github.com/blip2chat/blip2chat/weights/lmconv"
	"github.com/blip2chat/blip2chat/weights/plan"
)

// PullOptions tune Pull.
type PullOptions struct {
	// KeepSource keeps the raw checkpoint in the Hugging Face cache;
	// otherwise the files this pull downloaded are removed once converted
	// (files another tool had fetched before are always kept).
	KeepSource bool
	// VisionType and LLMType replace the catalogue's default weight types
	// ("" keeps them; convert --vision-type and --llm-type).
	VisionType, LLMType string
	// LlamaLib is the llama.cpp library folder ("" searches): quantizing
	// to q4_k_m needs it.
	LlamaLib string
	// Hub tunes the Hub client (its Log receives retries and warnings).
	Hub hub.Options
	// Progress receives the download's progress, one call at a time.
	Progress func(hub.Progress)
	// Status receives one line as each step begins.
	Status func(string)
	// ConvertProgress receives the converter's progress bar (Terminal: it
	// is a terminal), Warnings its warnings; nil discards them.
	ConvertProgress io.Writer
	Terminal        bool
	Warnings        io.Writer
}

// PullResult says what Pull did.
type PullResult struct {
	Name   string // the installed name
	Dir    string // the model folder
	Commit string // the commit installed
	// Plan is the pull's plan (nil when offline the installed model was
	// all there was to go by).
	Plan *hub.Plan
	// UpToDate says the model was already installed from the same commit:
	// nothing was downloaded or converted.
	UpToDate bool
	// Received is what came over the network, Source the size of the raw
	// checkpoint's files in the cache, Removed the part of it removed
	// (without KeepSource: the files this pull downloaded), Kept the part
	// left there.
	Received, Source, Removed, Kept int64
	// Converted is the size of the model folder.
	Converted int64
}

// Pull installs a model: name is a catalogue name or ORG/NAME, with an
// optional @REVISION. It resolves the revision on the Hub (or reads the
// Hugging Face cache when HF_HUB_OFFLINE is set), downloads what the cache
// misses, converts with the catalogue's default types into the data
// folder's models/, records where it came from, and unless KeepSource
// removes the raw files it downloaded. Every failure leaves a state from
// which running it again goes on.
func Pull(ctx context.Context, dataDir, name string, o PullOptions) (*PullResult, error) {
	status := func(f string, a ...any) {
		if o.Status != nil {
			o.Status(fmt.Sprintf(f, a...))
		}
	}
	ref, m, err := hub.Resolve(name)
	if err != nil {
		return nil, err
	}
	cfg, err := hub.ConfigFromEnv()
	if err != nil {
		return nil, err
	}
	c, err := hub.New(cfg, o.Hub)
	if err != nil {
		return nil, err
	}
	res := &PullResult{Name: installName(ref, m)}
	res.Dir = installDir(dataDir, res.Name)
	if cfg.Offline {
		status("resolving %s in the Hugging Face cache (offline)", ref)
	} else {
		status("resolving %s on %s", ref, cfg.Endpoint)
	}
	installed, _ := readInstallRecord(res.Dir)
	if installed != nil && !isModelDir(res.Dir) {
		installed = nil
	}
	p, err := c.Plan(ctx, ref)
	if err != nil {
		// Offline, the raw files of an installed model are usually gone:
		// the installed model is what there is.
		if cfg.Offline && installed != nil && installed.Repo == ref.Repo &&
			(ref.Revision == "" || ref.Revision == installed.Revision || ref.Revision == installed.Commit) {
			res.UpToDate, res.Commit, res.Converted = true, installed.Commit, dirBytes(res.Dir)
			return res, nil
		}
		return nil, err
	}
	res.Plan, res.Commit = p, p.Commit
	if installed != nil && installed.Commit == p.Commit {
		res.UpToDate, res.Converted = true, dirBytes(res.Dir)
		return res, nil
	}

	visionType, llmType := "", ""
	outBytes := p.Total() / 2 // an unknown repository: f32 weights to mostly 8 bits, with room
	if m != nil {
		// The converted files are never larger than the float32 download
		// (a test's tiny copy of the repository is smaller than the real one).
		visionType, llmType, outBytes = m.VisionType, m.LLMType, min(m.ConvertedBytes, p.Total())
	}
	if o.VisionType != "" {
		visionType = o.VisionType
	}
	if o.LLMType != "" {
		llmType = o.LLMType
	}
	if err := os.MkdirAll(ModelsDir(dataDir), 0o755); err != nil {
		return nil, err
	}
	fetchedBefore := map[string]bool{}
	for _, f := range p.Files {
		if f.Cached {
			fetchedBefore[f.Path] = true
		}
	}
	if p.Missing() > 0 {
		status("downloading %s of %s (commit %s) into %s", plan.FormatBytes(p.Missing()), ref.Repo, p.Commit[:7], cfg.CacheDir)
	}
	err = c.Fetch(ctx, p, hub.FetchOptions{OutputDir: ModelsDir(dataDir), OutputBytes: outBytes, Progress: func(pr hub.Progress) {
		res.Received = pr.Received
		if o.Progress != nil {
			o.Progress(pr)
		}
	}})
	if err != nil {
		return nil, err
	}

	lib, err := LoadQuantizer(p.Dir, llmType, o.LlamaLib)
	if err != nil {
		return nil, err
	}
	status("converting %s into %s", ref.Repo, res.Dir)
	cres, err := convert.Convert(ctx, p.Dir, res.Dir, convert.Options{
		VisionType: visionType,
		LLMType:    llmType,
		Progress:   o.ConvertProgress,
		Terminal:   o.Terminal,
		Warnings:   o.Warnings,
		Quantizer:  Quantizer(ctx, lib, o.Warnings),
	})
	if err != nil {
		return nil, fmt.Errorf("converting %s: %w", ref, err)
	}
	if visionType == "" {
		visionType = convert.DefaultVisionType
	}
	if llmType == "" && cres.LLMFamily != "" {
		if t, err := lmconv.ParseFamilyType(cres.LLMFamily, ""); err == nil {
			llmType = t.Name
		}
	}
	rec := InstallRecord{Name: res.Name, Repo: ref.Repo, Revision: ref.Rev(), Commit: p.Commit,
		VisionType: visionType, LLMType: llmType, Pulled: time.Now().UTC().Truncate(time.Second)}
	if err := writeInstallRecord(res.Dir, rec); err != nil {
		return nil, err
	}
	res.Converted = dirBytes(res.Dir)

	res.Source = cachedBytes(p)
	if o.KeepSource {
		res.Kept = res.Source
		return res, nil
	}
	for _, f := range p.Files {
		if fetchedBefore[f.Path] {
			res.Kept += f.Size
			continue
		}
		n, err := removeCached(p, f)
		res.Removed += n
		if err != nil {
			return res, fmt.Errorf("removing the downloaded %s from the Hugging Face cache: %v", f.Path, err)
		}
	}
	return res, nil
}

// cachedBytes is the size of the plan's files in the cache.
func cachedBytes(p *hub.Plan) int64 {
	var n int64
	for _, f := range p.Files {
		if st, err := os.Stat(filepath.Join(p.Dir, filepath.FromSlash(f.Path))); err == nil {
			n += st.Size()
		}
	}
	return n
}

// removeCached removes one file of the snapshot and its blob, as
// huggingface_hub's cache deletion does (a later pull downloads it again).
func removeCached(p *hub.Plan, f hub.File) (int64, error) {
	link := filepath.Join(p.Dir, filepath.FromSlash(f.Path))
	var n int64
	if st, err := os.Stat(link); err == nil {
		n = st.Size()
	}
	blob := filepath.Join(p.RepoDir, "blobs", f.Blob())
	if err := os.Remove(blob); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return n, err
	}
	// Empty folders of the snapshot (qformer_tokenizer/, the snapshot).
	for d := filepath.Dir(link); len(d) > len(p.RepoDir); d = filepath.Dir(d) {
		if os.Remove(d) != nil {
			break
		}
	}
	return n, nil
}

// LoadQuantizer loads the llama.cpp library when the checkpoint in hfDir
// converts to a language-model type only llama.cpp's quantizer makes
// (q4_k_m); otherwise, or when the config cannot be read (the converter
// reports that), it returns nil.
func LoadQuantizer(hfDir, llmType, llamaLib string) (*capi.Library, error) {
	cfg, err := hfconfig.Load(hfDir)
	if err != nil || !slices.Contains(lmconv.Families(), cfg.Text.ModelType) {
		return nil, nil
	}
	t, err := lmconv.ParseFamilyType(cfg.Text.ModelType, llmType)
	if err != nil || !t.Quantize {
		return nil, nil // the converter reports a bad type
	}
	lib, err := capi.Load(capi.Options{Dir: llamaLib})
	if err != nil {
		return nil, fmt.Errorf("quantizing the language model to %s needs the llama.cpp library: %v (or choose --llm-type f16 or q8_0)", t.Name, err)
	}
	return lib, nil
}

// Quantizer is the converter's Options.Quantizer on the llama.cpp library
// (nil without one): the language model is quantized inside the
// conversion's atomic write, so that a failure (a full disk) or Ctrl-C
// leaves the model folder as it was, never with an f16 llm.gguf in it
// (issue 12, D5). status (may be nil) is told when it starts.
func Quantizer(ctx context.Context, lib *capi.Library, status io.Writer) lmconv.Quantizer {
	if lib == nil {
		return nil
	}
	return func(in, out string, ftype int32) error {
		if status != nil {
			fmt.Fprintf(status, "quantizing %s with llama.cpp...\n", model.LLMFile)
		}
		p := lib.DefaultQuantizeParams()
		p.FType = ftype
		// llama.cpp cannot be stopped midway: on Ctrl-C the command returns
		// at once (lmconv.Finish removes out) and the process exits under it.
		done := make(chan error, 1)
		go func() { done <- lib.Quantize(in, out, p) }()
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// PullOffer is a model the user asked for that is not installed: the app
// asks whether to download it, then pulls and loads it.
type PullOffer struct {
	Name string     // as the user named it: the catalogue name or ORG/NAME
	Info *hub.Model // the catalogue entry (sizes), nil for another repository
	// Image is the image to open once the model is loaded.
	Image string
	// Run pulls the model (Pull), reporting progress and each step's
	// status, and returns how to open it.
	Run func(ctx context.Context, progress func(hub.Progress), status func(string)) (*ModelSource, error)
}

// question is the confirmation asked before the download.
func (o *PullOffer) question() string {
	if o.Info == nil {
		return fmt.Sprintf("%s is not installed: download it from the Hugging Face Hub and convert it?", o.Name)
	}
	return fmt.Sprintf("%s is not installed: download %s from the Hugging Face Hub and convert it (%s on disk, needs %s of RAM)?",
		o.Name, plan.FormatBytes(o.Info.DownloadBytes), plan.FormatBytes(o.Info.ConvertedBytes), plan.FormatBytes(o.Info.RAMBytes))
}

// offerPull asks whether to pull the missing model.
func (a *App) offerPull(o *PullOffer) {
	a.notef("The model %s is not installed yet.", o.Name)
	a.askConfirm(o.question(), func() { a.pull(o) }, func() {
		a.notef("Not downloaded. Install it later with: blip2chat pull %s\n\n%s", o.Name, noModelHelp(a.opts.Demo != nil))
	})
}

// pull downloads, converts and loads the offered model.
func (a *App) pull(o *PullOffer) {
	a.mu.Lock()
	a.st.Model.Name = o.Name
	a.mu.Unlock()
	a.run(Downloading, "downloading "+o.Name, func(ctx context.Context) {
		src, err := o.Run(ctx, func(p hub.Progress) {
			a.mu.Lock()
			a.st.Download = &p
			a.st.Progress = downloadText(p)
			a.mu.Unlock()
			a.notify()
		}, func(s string) {
			a.mu.Lock()
			a.st.Progress = s
			a.mu.Unlock()
			a.notify()
		})
		if err != nil {
			if ctx.Err() != nil {
				a.notef("Download stopped. Run blip2chat pull %s (or this chat again) to go on where it stopped.", o.Name)
				return
			}
			a.errorf("cannot pull %s: %v", o.Name, err)
			return
		}
		a.notef("Installed %s in %s.", o.Name, src.Dir)
		a.mu.Lock()
		a.st.Phase, a.st.Activity, a.st.Since, a.st.Progress, a.st.Download = Loading, "loading model", a.opts.Now(), "", nil
		a.st.Model.Dir, a.st.Model.Name = src.Dir, filepath.Base(src.Dir)
		a.mu.Unlock()
		a.notify()
		a.loadJob(ctx, src, o.Image, nil)
	})
}

// downloadText is a download's progress in a few words.
func downloadText(p hub.Progress) string {
	s := fmt.Sprintf("%s of %s", plan.FormatBytes(p.Bytes), plan.FormatBytes(p.Total))
	if p.Rate > 0 {
		s += fmt.Sprintf(", %s/s", plan.FormatBytes(int64(p.Rate)))
	}
	if p.ETA > 0 {
		s += ", " + p.ETA.Round(time.Second).String() + " left"
	}
	return s
}

// FormatBytes writes a size for people ("14.0 GB"), as the rest of
// blip2chat does.
func FormatBytes(n int64) string { return plan.FormatBytes(n) }
