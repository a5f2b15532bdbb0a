//go:build !unix

package bench

import "time"

// processCPU is only implemented on Unix systems: 0 (unknown).
func processCPU() time.Duration { return 0 }
