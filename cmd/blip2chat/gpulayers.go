package main

import (
	"flag"
	"fmt"
	"strconv"

	"github.com/blip2chat/blip2chat/engine/lm"
)

// gpuLayers is the --gpu-layers flag: a number of language-model layers, or
// "all" (lm.AllLayers).
type gpuLayers int

func (g *gpuLayers) String() string {
	if *g < 0 {
		return "all"
	}
	return strconv.Itoa(int(*g))
}

func (g *gpuLayers) Set(s string) error {
	if s == "all" {
		*g = lm.AllLayers
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return fmt.Errorf("want a number of layers (0: none) or all")
	}
	*g = gpuLayers(n)
	return nil
}

// addGPULayersFlag registers --gpu-layers (default: all) on fs.
func addGPULayersFlag(fs interface {
	Var(flag.Value, string, string)
}) *int {
	n := lm.AllLayers
	fs.Var((*gpuLayers)(&n), "gpu-layers", "language-model layers to put on the GPU: `N` or all (needs a GPU build of llama.cpp, see 'blip2chat doctor'; 0 keeps it on the CPU)")
	return &n
}
