package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/presencegw/presencegw/rules"
)

// eventWriter is a stream's response writer that reports each presence
// event it is sent.
type eventWriter struct {
	header http.Header
	events chan struct{}
}

func (w *eventWriter) Header() http.Header { return w.header }
func (w *eventWriter) WriteHeader(int)     {}
func (w *eventWriter) Flush()              {}
func (w *eventWriter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), "event: presence") {
		w.events <- struct{}{}
	}
	return len(p), nil
}

// BenchmarkStreamFanout: 10,000 open streams watching the same person;
// the time from a change to the last stream having written it. Goal
// ≤ 1 s. (In-process writers: one process cannot hold 20,000 loopback
// sockets under this machine's 20,000-file limit.)
func BenchmarkStreamFanout(b *testing.B) {
	const n = 10000
	be := &liveBackend{states: map[string]rules.State{"a@x": rules.Available}, changes: make(chan string, 16)}
	reg := prometheus.NewRegistry()
	s, err := New(Options{Anonymous: []string{"stream"}, MaxStreams: n}, be, func() error { return nil }, reg, reg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	writers := make([]*eventWriter, n)
	var wg sync.WaitGroup
	for i := range writers {
		w := &eventWriter{header: http.Header{}, events: make(chan struct{}, 4)}
		writers[i] = w
		req := httptest.NewRequest("GET", "/api/v1/presence/stream?email=a@x", nil).WithContext(ctx)
		wg.Add(1)
		go func() { defer wg.Done(); s.ServeHTTP(w, req) }()
	}
	for _, w := range writers {
		<-w.events // the snapshot
	}
	states := []rules.State{rules.Busy, rules.Available}
	var worst time.Duration
	i := 0
	for b.Loop() {
		start := time.Now()
		be.set("a@x", states[i%2])
		i++
		for _, w := range writers {
			<-w.events
		}
		worst = max(worst, time.Since(start))
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms-to-all")
	b.ReportMetric(n, "streams")
	cancel()
	wg.Wait()
}
