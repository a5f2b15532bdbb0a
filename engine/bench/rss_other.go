//go:build !linux

package bench

import "errors"

// PeakRSS is only implemented on Linux.
func PeakRSS() (int64, error) { return 0, errors.New("peak RSS: not available on this system") }

// ResetPeakRSS is only implemented on Linux.
func ResetPeakRSS() error { return errors.New("peak RSS: not available on this system") }

// LoadAverage is only implemented on Linux.
func LoadAverage() ([]float64, error) {
	return nil, errors.New("load average: not available on this system")
}
