//go:build unix

package safefile

import "syscall"

// nonBlock makes open(2) of a FIFO return at once instead of waiting for
// the other end; it changes nothing for a regular file.
const nonBlock = syscall.O_NONBLOCK
