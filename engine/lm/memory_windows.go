package lm

import (
	"unsafe"

	"golang.org/x/sys/windows"
)

// memoryStatusEx is MEMORYSTATUSEX.
type memoryStatusEx struct {
	length, memoryLoad                        uint32
	totalPhys, availPhys, totalPageFile       uint64
	availPageFile, totalVirtual, availVirtual uint64
	availExtendedVirtual                      uint64
}

var globalMemoryStatusEx = windows.NewLazySystemDLL("kernel32.dll").NewProc("GlobalMemoryStatusEx")

func physicalMemory() int64 {
	s := memoryStatusEx{length: uint32(unsafe.Sizeof(memoryStatusEx{}))}
	if ok, _, _ := globalMemoryStatusEx.Call(uintptr(unsafe.Pointer(&s))); ok == 0 || s.totalPhys > 1<<62 {
		return 0
	}
	return int64(s.totalPhys)
}
