package web

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// discardWriter is a ResponseWriter that keeps only the status, so the
// benchmarks below measure the handler, not a recorder.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *discardWriter) Header() http.Header  { return w.h }
func (w *discardWriter) WriteHeader(code int) { w.code = code }
func (w *discardWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.n += len(b)
	return len(b), nil
}

func (w *discardWriter) reset() {
	clear(w.h)
	w.code, w.n = 0, 0
}

// benchLookup serves target again and again the way the demo is set up:
// anonymous callers who see everything, the per-caller rate limit on (but
// high), no credentials.
func benchLookup(b *testing.B, target string, want int) {
	s := newServer(b, func(o *Options) {
		o.Anonymous, o.AnonymousVisibility = []string{"presence"}, SeeCalendar
		o.RatePerSecond, o.Burst = 1e9, 1e9
		o.CORSOrigins = nil
	})
	b.Cleanup(s.Close)
	req := httptest.NewRequest("GET", target, nil)
	req.RemoteAddr = "127.0.0.1:40000"
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		s.ServeHTTP(w, req)
		if w.code != want {
			b.Fatalf("%s: %d", target, w.code)
		}
	}
}

// BenchmarkServeLookupOnline is the web layer's own cost of one lookup of
// a person with calendar and chat details (the backend is a fake).
func BenchmarkServeLookupOnline(b *testing.B) {
	benchLookup(b, "/api/v1/presence?email=alice@example.com", http.StatusOK)
}

// BenchmarkServeLookupUnknown is the same for an address nobody has.
func BenchmarkServeLookupUnknown(b *testing.B) {
	benchLookup(b, "/api/v1/presence?email=nobody@example.com", http.StatusOK)
}
