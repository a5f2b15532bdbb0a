package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// PeakRSS returns the process's peak resident memory in bytes: VmHWM of
// /proc/self/status (which ResetPeakRSS can lower), else getrusage's
// ru_maxrss. Mapped weight pages that were touched count, as they should.
func PeakRSS() (int64, error) {
	if data, err := os.ReadFile("/proc/self/status"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
				f := strings.Fields(rest)
				if len(f) == 2 && f[1] == "kB" {
					if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
						return kb << 10, nil
					}
				}
			}
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("peak RSS: %v", err)
	}
	return ru.Maxrss << 10, nil // kB on Linux
}

// ResetPeakRSS restarts the peak at the current resident memory (writing
// 5 to /proc/self/clear_refs), so that work done before the measurement,
// such as generating a synthetic model, does not count.
func ResetPeakRSS() error {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// LoadAverage returns the 1, 5 and 15 minute load averages of
// /proc/loadavg, to tell a quiet machine from a busy one.
func LoadAverage() ([]float64, error) {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return nil, err
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return nil, fmt.Errorf("/proc/loadavg: %q", data)
	}
	out := make([]float64, 3)
	for i := range out {
		if out[i], err = strconv.ParseFloat(f[i], 64); err != nil {
			return nil, fmt.Errorf("/proc/loadavg: %v", err)
		}
	}
	return out, nil
}
