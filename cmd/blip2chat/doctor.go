package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/cpu"

	"github.com/blip2chat/blip2chat/engine/kernels"
	"github.com/blip2chat/blip2chat/engine/llamacpp/capi"
	"github.com/blip2chat/blip2chat/engine/model"
	"github.com/blip2chat/blip2chat/engine/retrieval"
	"github.com/blip2chat/blip2chat/weights/gguf"
)

func init() {
	register(&command{
		name:    "doctor",
		summary: "check this machine: CPU, the llama.cpp library, and optionally a model folder",
		usage:   "[--llama-lib DIR] [-m MODEL_DIR]",
		run:     runDoctor,
	})
}

// runDoctor prints what blip2chat finds. Every check runs even when an
// earlier one fails; the first problem is returned (one line on stderr, exit
// status 1).
func runDoctor(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(commands["doctor"], stderr)
	libDir := fs.String("llama-lib", "", "llama.cpp library `folder` (default: search, see below)")
	modelDir := fs.String("m", "", "model to inspect: an installed name (blip2chat models) or a `folder` made by 'blip2chat convert'")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *modelDir, err = resolveModelArg(*modelDir); err != nil {
		return err
	}
	if len(pos) > 0 {
		return errUsage
	}
	w := &doctorWriter{w: stdout}
	w.line("blip2chat", version)
	w.line("go", runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)
	w.line("cpu", fmt.Sprintf("%d usable cores (GOMAXPROCS %d); %s", runtime.NumCPU(), runtime.GOMAXPROCS(0), doctorCPUFeatures()))
	w.line("go kernels", kernels.Features())

	problem := doctorLibrary(w, *libDir)
	if *modelDir != "" {
		if p := doctorModel(w, *modelDir, *libDir); problem == nil {
			problem = p
		}
	}
	return problem
}

// doctorWriter prints aligned "name  value" lines.
type doctorWriter struct{ w io.Writer }

func (d *doctorWriter) line(name, value string) { fmt.Fprintf(d.w, "%-12s %s\n", name, value) }

// doctorCPUFeatures lists the features the kernels and llama.cpp care about,
// with the missing ones named as such.
func doctorCPUFeatures() string {
	type feat struct {
		name string
		has  bool
	}
	var fs []feat
	switch runtime.GOARCH {
	case "amd64":
		fs = []feat{{"avx2", cpu.X86.HasAVX2}, {"fma", cpu.X86.HasFMA}, {"f16c", cpu.X86.HasF16C}, {"avx512f", cpu.X86.HasAVX512F}}
	case "arm64":
		fs = []feat{{"asimd", cpu.ARM64.HasASIMD}, {"fphp", cpu.ARM64.HasFPHP}, {"asimdhp", cpu.ARM64.HasASIMDHP}, {"asimddp", cpu.ARM64.HasASIMDDP}}
	default:
		return "no feature report for " + runtime.GOARCH
	}
	var have, missing []string
	for _, f := range fs {
		if f.has {
			have = append(have, f.name)
		} else {
			missing = append(missing, f.name)
		}
	}
	s := strings.Join(have, " ")
	if len(missing) > 0 {
		if s != "" {
			s += "; "
		}
		s += "no " + strings.Join(missing, " ")
	}
	return s
}

// doctorLibrary loads llama.cpp and describes it.
func doctorLibrary(w *doctorWriter, dir string) error {
	lib, err := capi.Load(capi.Options{Dir: dir})
	if err != nil {
		w.line("llama.cpp", "NOT USABLE (see the error below)")
		if loc, lerr := capi.Locate(dir); lerr == nil && len(loc.Tried) > 0 {
			w.line("  looked in", strings.Join(loc.Tried, ", "))
		}
		return err
	}
	in := lib.Info()
	w.line("llama.cpp", in.Location.String())
	if len(in.Location.Tried) > 0 {
		w.line("  looked in", strings.Join(in.Location.Tried, ", ")+" first")
	}
	w.line("  version", fmt.Sprintf("%s (needs v%s from %s), ggml %s", in.Version, capi.Version, capi.Package, in.GGMLVersion))
	w.line("  build", doctorBuild(in))
	w.line("  cpu", in.SystemInfo)
	devs := make([]string, len(in.Devices))
	for i, d := range in.Devices {
		devs[i] = d.String()
		if d.Type != "CPU" {
			devs[i] = d.Type + " " + devs[i]
		}
	}
	w.line("  devices", strings.Join(devs, ", "))
	w.line("  gpu", doctorGPU(in))
	return nil
}

// doctorBuild names the library's build and what checking its files found.
func doctorBuild(in capi.Info) string {
	s := in.Variant
	if g := capi.GPUName(in.Variant); g != "" {
		s = g
	}
	if !in.Check.Stamped {
		return s + ", not checked (no stamp: not installed by 'make lib')"
	}
	return fmt.Sprintf("%s, %s; %d files match the sizes and sha256 recorded at install (%d hashed now, %.1f ms)",
		s, in.Check.Spec, in.Check.Files, in.Check.Hashed, float64(in.Check.Took.Microseconds())/1000)
}

// doctorGPU says whether the language model can be offloaded, and if not why.
func doctorGPU(in capi.Info) string {
	var gpus []string
	for _, d := range in.Devices {
		if d.GPU() {
			gpus = append(gpus, d.Name)
		}
	}
	switch {
	case len(gpus) > 0:
		return "the language model's layers go to " + strings.Join(gpus, ", ") + " (--gpu-layers N|all, default all)"
	case in.Fallback != "":
		return in.Fallback
	}
	var builds []string
	for _, v := range capi.GPUBuilds(runtime.GOOS, runtime.GOARCH) {
		builds = append(builds, "'make lib LLAMA_VARIANT="+v+"'")
	}
	if len(builds) == 0 {
		return "none: this is the CPU build, and there is no GPU build of llama.cpp for " + runtime.GOOS + "/" + runtime.GOARCH
	}
	return "none: this is the CPU build (" + strings.Join(builds, " or ") + " fetches a GPU build)"
}

// doctorExpected are the files 'blip2chat convert' writes.
var doctorExpected = []string{"vision.gguf", "llm.gguf"}

// doctorModel lists the model folder, with each GGUF file's architecture and
// tensor count, then checks that its files load and belong together.
func doctorModel(w *doctorWriter, dir, libDir string) error {
	w.line("model", dir)
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: no such model folder", dir)
	case errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("%s is not a model folder (it should hold vision.gguf and llm.gguf)", dir)
	case err != nil:
		return fmt.Errorf("model folder: %w", err)
	}
	var problem error
	note := func(err error) {
		if problem == nil {
			problem = err
		}
	}
	// Rows first, so the names can be padded to the longest.
	type row struct{ name, desc string }
	var rows []row
	seen := map[string]bool{}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		seen[e.Name()] = true
		desc := ""
		if st, err := e.Info(); err == nil {
			desc = doctorSize(st.Size())
		}
		if strings.HasSuffix(e.Name(), ".gguf") {
			s, err := doctorGGUF(filepath.Join(dir, e.Name()))
			if err != nil {
				note(err)
				s = "UNREADABLE: " + err.Error()
			}
			desc += ", " + s
		}
		rows = append(rows, row{e.Name(), desc})
	}
	expected := doctorExpected
	retrievalModel := isRetrievalDir(dir)
	if retrievalModel {
		expected = doctorExpected[:1] // no language model
	}
	for _, name := range expected {
		if !seen[name] {
			rows = append(rows, row{name, "MISSING"})
			note(fmt.Errorf("%s has no %s; make the folder with 'blip2chat convert'", dir, name))
		}
	}
	width := 0
	for _, r := range rows {
		width = max(width, len(r.name))
	}
	for _, r := range rows {
		fmt.Fprintf(w.w, "  %-*s  %s\n", width, r.name, r.desc)
	}
	if problem == nil {
		msg := "vision.gguf and llm.gguf load and belong together"
		if retrievalModel {
			msg = "a retrieval model (match, index, search): vision.gguf loads"
			var m *retrieval.Model
			if m, problem = openRetrieval(dir, 1); problem == nil {
				m.Close()
			}
		} else {
			problem = model.Check(dir, model.Options{LlamaLib: libDir})
		}
		if problem != nil {
			msg = "PROBLEM (see the error below)"
		}
		fmt.Fprintf(w.w, "  %-*s  %s\n", width, "check", msg)
	}
	return problem
}

func doctorGGUF(path string) (string, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	arch, ok := f.String(gguf.KeyArchitecture)
	if !ok {
		arch = "no general.architecture"
	}
	return fmt.Sprintf("gguf v%d, %s, %d tensors, %d metadata keys", f.Version, arch, len(f.Tensors), len(f.KV)), nil
}

func doctorSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 3 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGT"[i])
}
