//go:build !unix

package safefile

// nonBlock: opening a file does not wait for a peer here.
const nonBlock = 0
