package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/blip2chat/blip2chat/internal/safefile"
)

// IndexName is the file naming the shard of every tensor in a sharded
// Hugging Face checkpoint.
const IndexName = "model.safetensors.index.json"

// Checkpoint is the tensors of a Hugging Face model folder, looked up across
// all of its safetensors files.
type Checkpoint struct {
	files   []*File
	tensors map[string]Tensor
	owner   map[string]*File // file holding each tensor
	names   []string
}

// OpenCheckpoint opens the safetensors weights of a model folder, choosing
// like transformers does: model.safetensors if present, else the shards
// listed in model.safetensors.index.json (validated: every shard exists and
// holds the tensors the index puts there), else every *.safetensors file in
// the folder. A tensor name found in two files is an error. A folder with
// only PyTorch pickles gives an error wrapping ErrPickle. dir may also be a
// single .safetensors file.
func OpenCheckpoint(dir string) (*Checkpoint, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		if err := CheckNotPickle(dir); err != nil {
			return nil, err
		}
		return openFiles([]string{dir}, nil)
	}
	single := filepath.Join(dir, "model.safetensors")
	if isFile(single) {
		return openFiles([]string{single}, nil)
	}
	index := filepath.Join(dir, IndexName)
	if isFile(index) {
		return openIndexed(dir, index)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var shards, pickles []string
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(dir, name)
		switch {
		case strings.HasSuffix(name, ".safetensors") && isFile(path):
			shards = append(shards, path)
		case hasPickleExt(name) && isFile(path):
			pickles = append(pickles, name)
		}
	}
	if len(shards) > 0 {
		return openFiles(shards, nil)
	}
	if len(pickles) > 0 {
		return nil, pickleError(dir, fmt.Sprintf("has only PyTorch pickle weights (%s), no *.safetensors", strings.Join(pickles, ", ")))
	}
	return nil, fmt.Errorf("%s: no model.safetensors, %s or *.safetensors file", dir, IndexName)
}

// isFile follows symlinks, as Hugging Face cache snapshots are symlinks.
func isFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// maxIndexBytes bounds model.safetensors.index.json: a few hundred KB for
// the largest checkpoints; more is not an index.
const maxIndexBytes = 64 << 20

func openIndexed(dir, index string) (*Checkpoint, error) {
	raw, err := safefile.ReadFile(index, maxIndexBytes)
	if err != nil {
		return nil, err
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("%s: invalid JSON: %v", index, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("%s: weight_map is missing or empty", index)
	}
	seen := map[string]bool{}
	var shards []string
	for _, shard := range idx.WeightMap {
		if seen[shard] {
			continue
		}
		seen[shard] = true
		// Shards are plain names in the folder; never follow a path out of it.
		if shard == "" || shard == "." || shard == ".." || strings.ContainsAny(shard, `/\`) {
			return nil, fmt.Errorf("%s: shard %q is not a file name in the folder", index, shard)
		}
		path := filepath.Join(dir, shard)
		if hasPickleExt(shard) {
			return nil, pickleError(path, "is listed as a shard")
		}
		if !isFile(path) {
			return nil, fmt.Errorf("%s: shard %q is missing", index, shard)
		}
		shards = append(shards, path)
	}
	sort.Strings(shards)
	return openFiles(shards, func(c *Checkpoint) error {
		for name, shard := range idx.WeightMap {
			f, ok := c.owner[name]
			if !ok {
				return fmt.Errorf("%s: tensor %q is mapped to shard %q but is in no shard", index, name, shard)
			}
			if got := filepath.Base(f.name); got != shard {
				return fmt.Errorf("%s: tensor %q is mapped to shard %q but is in %q", index, name, shard, got)
			}
		}
		return nil
	})
}

// openFiles opens every path and merges their tensors; check, if not nil,
// validates the result. On any error everything opened is closed.
func openFiles(paths []string, check func(*Checkpoint) error) (*Checkpoint, error) {
	c := &Checkpoint{tensors: map[string]Tensor{}, owner: map[string]*File{}}
	fail := func(err error) (*Checkpoint, error) {
		c.Close()
		return nil, err
	}
	for _, path := range paths {
		f, err := Open(path)
		if err != nil {
			return fail(err)
		}
		c.files = append(c.files, f)
		for _, name := range f.names {
			if prev, dup := c.owner[name]; dup {
				return fail(fmt.Errorf("tensor %q is in both %s and %s", name, prev.name, path))
			}
			c.owner[name] = f
			c.tensors[name] = f.tensors[name]
			c.names = append(c.names, name)
		}
	}
	sort.Strings(c.names)
	if check != nil {
		if err := check(c); err != nil {
			return fail(err)
		}
	}
	return c, nil
}

// Names lists every tensor name across the files, sorted.
func (c *Checkpoint) Names() []string { return slices.Clone(c.names) }

// Tensor returns the named tensor from whichever file holds it; false if
// absent or the checkpoint is closed.
func (c *Checkpoint) Tensor(name string) (Tensor, bool) {
	if c.tensors == nil {
		return Tensor{}, false
	}
	t, ok := c.tensors[name]
	if ok {
		t.Shape = slices.Clone(t.Shape)
	}
	return t, ok
}

// Files lists the paths of the files making up the checkpoint.
func (c *Checkpoint) Files() []string {
	out := make([]string, len(c.files))
	for i, f := range c.files {
		out[i] = f.name
	}
	return out
}

// Close unmaps every file. Tensor data obtained earlier must not be used after.
func (c *Checkpoint) Close() error {
	var errs []error
	for _, f := range c.files {
		errs = append(errs, f.Close())
	}
	c.files, c.tensors, c.owner = nil, nil, nil
	return errors.Join(errs...)
}
