package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// gcHeadroom is how far the heap may grow past what the last collection
// left before the next one, at least. Go's default (GOGC=100) lets it
// double, with a floor of 4 MiB: a gateway whose live heap is a few MiB
// (a small directory, the demo) then collects dozens of times a second
// under HTTP load (net/http allocates some 3 KB per request), which cost
// it 5-8 % of its requests per second under wrk. With 32 MiB of
// headroom it collects a tenth as often; a heap that lives on more than
// 32 MiB keeps Go's default, so large directories pay nothing.
const gcHeadroom = 32 << 20

var gcTuneOnce sync.Once

// keepGCHeadroom sets the collector's target after every collection so
// that the next one comes no earlier than gcHeadroom of allocation. An
// operator's GOGC or GOMEMLIMIT turns it off: their choice stands.
func keepGCHeadroom() {
	gcTuneOnce.Do(func() {
		if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
			return
		}
		tuneGCEachCycle(gcHeadroom) // for the life of the process
	})
}

// gcSentinel is allocated for the collector to free: its cleanup runs
// once per collection. It holds a pointer so it does not come from the
// tiny allocator, whose blocks are freed late.
type gcSentinel struct{ _ *byte }

// tuneGCEachCycle re-tunes the GC percentage after each collection, from
// what it left to scan, until stop is called; stop returns once no tuning
// is under way, so the caller's own setting afterwards stands.
func tuneGCEachCycle(headroom uint64) (stop func()) {
	var mu sync.Mutex
	stopped := false
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
	var arm func()
	arm = func() {
		runtime.AddCleanup(&gcSentinel{}, func(struct{}) {
			mu.Lock()
			defer mu.Unlock()
			if stopped {
				return
			}
			metrics.Read(sample)
			var scan uint64
			for _, s := range sample {
				if s.Value.Kind() == metrics.KindUint64 {
					scan += s.Value.Uint64()
				}
			}
			debug.SetGCPercent(gcPercentFor(scan, headroom))
			arm()
		}, struct{}{})
	}
	arm()
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
	}
}

// gcPercentFor is the GOGC that puts the next collection headroom past the
// current heap, never below Go's default of 100. Go's goal is the live
// heap plus GOGC % of everything it scans (live heap, goroutine stacks,
// globals): scan is that sum.
func gcPercentFor(scan, headroom uint64) int {
	const maxPercent = 100_000 // next to nothing to scan
	if scan == 0 {
		return maxPercent
	}
	return int(min(max(headroom*100/scan, 100), maxPercent))
}
