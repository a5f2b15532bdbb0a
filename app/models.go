package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/blip2chat/blip2chat/engine/model"
	"github.com/blip2chat/blip2chat/internal/safefile"
	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/hub"
	"github.com/blip2chat/blip2chat/weights/plan"
)

// Installed models live in the data folder, one folder each: a catalogue
// entry under its short name (models/blip2-opt-2.7b), any other Hub
// repository under ORG/NAME (models/ORG/NAME), each with the converted
// files and InstallRecordFile saying where they came from.

// ModelsDir is where pulled models are installed inside the data folder.
func ModelsDir(dataDir string) string { return filepath.Join(dataDir, "models") }

// InstallRecordFile is the record a pull leaves in the model folder.
const InstallRecordFile = "pull.json"

// InstallRecord says where an installed model came from.
type InstallRecord struct {
	Name       string    `json:"name"`
	Repo       string    `json:"repo"`
	Revision   string    `json:"revision"`
	Commit     string    `json:"commit"`
	VisionType string    `json:"vision_type"`
	LLMType    string    `json:"llm_type,omitempty"`
	Pulled     time.Time `json:"pulled"`
}

// InstalledModel is a model folder in ModelsDir.
type InstalledModel struct {
	Name  string
	Dir   string
	Bytes int64 // on disk
	// Types are the weight types of the model's files, as "vision q8_0",
	// "llm q4_k_m" (the type most of each file's matrix bytes have).
	Types  []string
	Record *InstallRecord // nil when the folder has none
}

// installName is the name a pull installs ref under: the catalogue's short
// name, else ORG/NAME.
func installName(ref hub.Ref, m *hub.Model) string {
	if m != nil {
		return m.Name
	}
	return ref.Repo
}

func installDir(dataDir, name string) string {
	return filepath.Join(ModelsDir(dataDir), filepath.FromSlash(name))
}

func isModelDir(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, model.VisionFile))
	return err == nil && st.Mode().IsRegular()
}

// NotInstalledError says a model name is known (a catalogue entry or a Hub
// repository) but not installed: Pull installs it.
type NotInstalledError struct {
	Name  string     // what to pull: the catalogue name or ORG/NAME[@REVISION]
	Model *hub.Model // the catalogue entry, nil for another repository
}

func (e *NotInstalledError) Error() string {
	if e.Model == nil {
		// A mistyped folder looks like ORG/NAME too.
		return fmt.Sprintf("%s: no such model folder or installed model; to get the Hub repository %s: blip2chat pull %s", e.Name, e.Name, e.Name)
	}
	return fmt.Sprintf("model %s is not installed: get it with 'blip2chat pull %s' (downloads %s, %s once converted)",
		e.Name, e.Name, plan.FormatBytes(e.Model.DownloadBytes), plan.FormatBytes(e.Model.ConvertedBytes))
}

// ResolveModel turns what a user gave as a model (-m, chat's NAME) into a
// model folder: an existing folder as it is, else an installed model's
// folder by its name (a catalogue name, any case, or ORG/NAME); a known
// name that is not installed is a *NotInstalledError. Anything else comes
// back unchanged, for the caller to report as a missing folder. One
// resolver for every command and the interface.
func ResolveModel(dataDir, arg string) (string, error) {
	if arg == "" {
		return "", nil
	}
	if st, err := os.Stat(arg); err == nil && st.IsDir() {
		return arg, nil
	}
	ref, m, err := hub.Resolve(arg)
	if err != nil {
		return arg, nil // a folder path that does not exist: the caller says so
	}
	dir := installDir(dataDir, installName(ref, m))
	if isModelDir(dir) {
		return dir, nil
	}
	name := arg
	if m != nil {
		name = m.Name
		if ref.Revision != "" {
			name += "@" + ref.Revision
		}
	}
	return "", &NotInstalledError{Name: name, Model: m}
}

// Installed lists the installed models, sorted by name.
func Installed(dataDir string) ([]InstalledModel, error) {
	root := ModelsDir(dataDir)
	var out []InstalledModel
	add := func(name, dir string) {
		im := InstalledModel{Name: name, Dir: dir, Bytes: dirBytes(dir), Types: modelTypes(dir)}
		if r, err := readInstallRecord(dir); err == nil {
			im.Record = r
		}
		out = append(out, im)
	}
	ents, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		dir := filepath.Join(root, e.Name())
		if isModelDir(dir) {
			add(e.Name(), dir)
			continue
		}
		// An organization's folder: its repositories inside.
		sub, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, s := range sub {
			if d := filepath.Join(dir, s.Name()); s.IsDir() && isModelDir(d) {
				add(e.Name()+"/"+s.Name(), d)
			}
		}
	}
	slices.SortFunc(out, func(a, b InstalledModel) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// FindInstalled returns the installed model called name (a catalogue name
// in any case, or ORG/NAME).
func FindInstalled(dataDir, name string) (InstalledModel, error) {
	ref, m, err := hub.Resolve(name)
	if err != nil {
		return InstalledModel{}, err
	}
	if ref.Revision != "" {
		return InstalledModel{}, fmt.Errorf("%q: installed models are named without a revision", name)
	}
	n := installName(ref, m)
	dir := installDir(dataDir, n)
	if !isModelDir(dir) {
		return InstalledModel{}, fmt.Errorf("no installed model %s (blip2chat models lists them)", n)
	}
	im := InstalledModel{Name: n, Dir: dir, Bytes: dirBytes(dir), Types: modelTypes(dir)}
	if r, err := readInstallRecord(dir); err == nil {
		im.Record = r
	}
	return im, nil
}

// Remove deletes an installed model's folder (and its organization's
// folder when that is left empty). The Hugging Face cache is not touched.
func Remove(im InstalledModel) error {
	root := filepath.Dir(im.Dir)
	if err := os.RemoveAll(im.Dir); err != nil {
		return err
	}
	if strings.Contains(im.Name, "/") {
		os.Remove(root) // only when empty
	}
	return nil
}

func readInstallRecord(dir string) (*InstallRecord, error) {
	data, err := safefile.ReadFile(filepath.Join(dir, InstallRecordFile), 1<<20)
	if err != nil {
		return nil, err
	}
	var r InstallRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %v", InstallRecordFile, err)
	}
	return &r, nil
}

func writeInstallRecord(dir string, r InstallRecord) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	t, err := safefile.CheckTarget(filepath.Join(dir, InstallRecordFile))
	if err != nil {
		return err
	}
	return t.Write(append(data, '\n'), 0o644)
}

// dirBytes is the size of the regular files under dir.
func dirBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if st, err := d.Info(); err == nil {
				n += st.Size()
			}
		}
		return nil
	})
	return n
}

// modelTypes names the weight type of each GGUF file of a model folder.
func modelTypes(dir string) []string {
	var out []string
	for _, f := range []struct{ label, file string }{{"vision", model.VisionFile}, {"llm", model.LLMFile}} {
		if t := ggufMainType(filepath.Join(dir, f.file)); t != "" {
			out = append(out, f.label+" "+t)
		}
	}
	return out
}

// ggufMainType is the type holding most of a GGUF file's tensor elements
// among its matrices ("" when the file cannot be read).
func ggufMainType(path string) string {
	f, err := gguf.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	elems := map[gguf.Type]uint64{}
	for _, t := range f.Tensors {
		if len(t.Dims) < 2 {
			continue
		}
		n := uint64(1)
		for _, d := range t.Dims {
			n *= d
		}
		elems[t.Type] += n
	}
	var best gguf.Type
	var most uint64
	for t, n := range elems {
		if n > most || n == most && t < best {
			best, most = t, n
		}
	}
	if most == 0 {
		return ""
	}
	return strings.ToLower(best.String())
}

// IsModelName reports whether s names a model rather than a file: a
// catalogue name (optionally @REVISION) or an installed model's name, and
// no file or folder of that name exists.
func IsModelName(dataDir, s string) bool {
	if _, err := os.Lstat(s); err == nil {
		return false
	}
	ref, m, err := hub.Resolve(s)
	if err != nil {
		return false
	}
	return m != nil || isModelDir(installDir(dataDir, installName(ref, m)))
}
