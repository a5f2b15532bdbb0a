package main

import (
	"fmt"
	"io"

	"github.com/blip2chat/blip2chat/engine/kernels"
)

// capThreads is the --threads value of command cmd as the engine will run
// it: at most the usable cores (kernels.UsableThreads; more only take
// turns, and make every step wait for the slowest), saying so once on
// stderr when n asks for more. 0 stays 0 (the default).
func capThreads(cmd string, n int, stderr io.Writer) int {
	usable := kernels.UsableThreads()
	if n <= usable {
		return n
	}
	fmt.Fprintf(stderr, "blip2chat %s: note: --threads %d is more than the %d usable cores; using %d\n", cmd, n, usable, usable)
	return usable
}
