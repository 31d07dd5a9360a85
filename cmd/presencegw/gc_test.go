package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

// The test binary runs serveConfig many times; its process-wide tuner
// would re-tune the GC under TestGCTunedEachCycle. Spend its once here.
func init() { gcTuneOnce.Do(func() {}) }

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		scan, headroom uint64
		want           int
	}{
		{2 * mib, 32 * mib, 1600}, // the demo: collect every 32 MiB, not every 2
		{16 * mib, 32 * mib, 200},
		{32 * mib, 32 * mib, 100}, // from here on Go's default
		{500 * mib, 32 * mib, 100},
		{1, 32 * mib, 100_000}, // bounded
		{0, 32 * mib, 100_000},
	}
	for _, tt := range tests {
		if got := gcPercentFor(tt.scan, tt.headroom); got != tt.want {
			t.Errorf("gcPercentFor(%d, %d) = %d, want %d", tt.scan, tt.headroom, got, tt.want)
		}
	}
}

// TestGCTunedEachCycle: after a collection the GC percentage is the one
// for the heap it left, and stop leaves it alone.
func TestGCTunedEachCycle(t *testing.T) {
	old := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(old) })
	const headroom = 1 << 40 // far past any live heap: the bound applies
	stop := tuneGCEachCycle(headroom)
	gogc := func() uint64 {
		s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	deadline := time.Now().Add(10 * time.Second)
	for gogc() != 100_000 {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC is %d after collections, want 100000", gogc())
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // the cleanup runs on its own goroutine
	}
	stop()
	debug.SetGCPercent(100)
	runtime.GC()
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	if g := gogc(); g != 100 {
		t.Errorf("GOGC is %d after stop, want it left at 100", g)
	}
}
