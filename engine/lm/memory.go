package lm

// PhysicalMemory is the machine's memory in bytes, 0 when unknown: the
// bound of a context's KV cache (a context larger than the machine makes
// llama.cpp allocate for seconds before it fails).
func PhysicalMemory() int64 { return physicalMemory() }
