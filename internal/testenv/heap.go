package testenv

import "runtime"

// LiveHeap returns the bytes the heap holds after two full collections
// (the second frees what the first's finalizers let go): what a memory
// test or benchmark compares before and after building something.
func LiveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
