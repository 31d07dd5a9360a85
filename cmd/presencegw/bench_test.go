package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/presencegw/presencegw/internal/config"
	"github.com/presencegw/presencegw/web"
)

// benchServer is the demo gateway's HTTP handler with its calendar read.
func benchServer(b *testing.B) *web.Server {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := openApp(config.Defaults(), true, log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(a.close)
	if _, err := a.dir.SyncFull(context.Background(), nil); err != nil {
		b.Fatal(err)
	}
	if err := a.presence.Refresh(context.Background(), a.calendar); err != nil {
		b.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s, err := web.New(web.Options{Anonymous: []string{"presence"}, AnonymousVisibility: web.SeeCalendar},
		backend{dir: a.dir, presence: a.presence}, a.ready, reg, reg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	return s
}

// BenchmarkBatch100 is the server time of a batch lookup of 100
// addresses (known people, aliases, unknown ones). Goal ≤ 1 ms.
func BenchmarkBatch100(b *testing.B) {
	s := benchServer(b)
	known := []string{"alice@example.com", "a.smith@example.com", "bob@example.com", "carol@example.com", "dave@example.com", "erin@example.com", "frank@example.com"}
	var emails []string
	for i := range 100 {
		if i%3 == 2 {
			emails = append(emails, fmt.Sprintf(`"nobody%d@example.com"`, i))
		} else {
			emails = append(emails, `"`+known[i%len(known)]+`"`)
		}
	}
	body := `{"emails":[` + strings.Join(emails, ",") + `]}`
	for b.Loop() {
		req := httptest.NewRequest("POST", "/api/v1/presence/batch", strings.NewReader(body))
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body.String())
		}
	}
}

// BenchmarkLookup is the server time of one lookup of a person in a
// meeting, without the network.
func BenchmarkLookup(b *testing.B) {
	s := benchServer(b)
	for b.Loop() {
		req := httptest.NewRequest("GET", "/api/v1/presence?email=alice@example.com", nil)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

// discard is a ResponseWriter that keeps only the status, so
// BenchmarkServeOnline measures the gateway, not a recorder.
type discard struct {
	h    http.Header
	code int
}

func (w *discard) Header() http.Header         { return w.h }
func (w *discard) WriteHeader(code int)        { w.code = code }
func (w *discard) Write(b []byte) (int, error) { return len(b), nil }

// BenchmarkServeOnline is the gateway's own CPU for one lookup of a person
// in a meeting with calendar details, the request made once: what the
// HTTP load test adds to net/http's cost per request.
func BenchmarkServeOnline(b *testing.B) {
	s := benchServer(b)
	req := httptest.NewRequest("GET", "/api/v1/presence?email=alice@example.com", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.code = 0
		s.ServeHTTP(w, req)
		if w.code != 200 {
			b.Fatal(w.code)
		}
	}
}
