package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/blip2chat/blip2chat/internal/safefile"
)

// forceUsage is the help of every command's --force.
const forceUsage = "replace output files that already exist"

// checkOutputFile vets path as a file a command will write (encode -o, ask
// --logits-out, convert's vision.gguf and llm.gguf), before any work and
// again just before writing: its folder must exist; it must not be one of
// inputs (whatever the name: links and hard links included), a folder, a
// symbolic link, a device node, a FIFO or a socket (writers replace the
// path by renaming a new file over it, which would destroy a device node or
// the link, not write through them); an existing regular file is replaced
// only with force (--force). Inputs that do not exist are ignored.
func checkOutputFile(path string, force bool, inputs ...string) error {
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("%s: folder %s does not exist", safefile.Name(path), safefile.Name(dir))
	}
	t, err := safefile.CheckTarget(path, inputs...)
	if err != nil {
		return err
	}
	if t.Existing != nil && !force {
		return fmt.Errorf("%s already exists; add --force to replace it", safefile.Name(path))
	}
	return nil
}

// folderFiles lists the regular files of dir (following links, as in a
// Hugging Face cache snapshot) and of its subfolders one level down: the
// inputs a conversion reads, which its outputs must not overwrite.
func folderFiles(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if p != dir && filepath.Dir(p) != dir {
				return fs.SkipDir
			}
			return nil
		}
		out = append(out, p)
		return nil
	})
	return out
}
