package web

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/presencegw/presencegw/rules"
)

// liveBackend has people whose state a test changes.
type liveBackend struct {
	mu      sync.Mutex
	states  map[string]rules.State
	changes chan string
}

func (b *liveBackend) Lookup(email string) Entry {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, ok := b.states[email]
	if !ok {
		return Entry{Email: email, Status: NotFound}
	}
	return Entry{Email: email, Status: Found, Mailbox: "mb-" + email, Presence: rules.Output{State: st}}
}

// LookupJID takes the people's addresses for their JIDs.
func (b *liveBackend) LookupJID(jid string) Entry { return b.Lookup(jid) }

func (b *liveBackend) Changes(int) (<-chan string, func()) { return b.changes, func() {} }

func (b *liveBackend) set(email string, st rules.State) {
	b.mu.Lock()
	b.states[email] = st
	b.mu.Unlock()
	b.changes <- "mb-" + email
}

// sse reads events from a stream: id and data lines.
type sse struct {
	sc *bufio.Scanner
}

func (s *sse) next(t *testing.T) (id, data string) {
	t.Helper()
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		case line == "" && data != "":
			return id, data
		}
	}
	t.Fatalf("stream ended: %v", s.sc.Err())
	return "", ""
}

func openStream(t *testing.T, url, lastID string) (*sse, func()) {
	t.Helper()
	// A stream that never delivers ends the test in seconds, not at the
	// suite's timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &sse{sc: bufio.NewScanner(resp.Body)}, func() { cancel(); resp.Body.Close() }
}

func TestStream(t *testing.T) {
	b := &liveBackend{states: map[string]rules.State{"a@x": rules.Available, "b@x": rules.Away}, changes: make(chan string, 16)}
	reg := prometheus.NewRegistry()
	s, err := New(Options{Anonymous: []string{"stream"}}, b, func() error { return nil }, reg, reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	st, stop := openStream(t, srv.URL+"/api/v1/presence/stream?email=a@x&email=b@x", "")
	// Snapshot first, in order.
	if _, d := st.next(t); d != `{"email":"a@x","state":"available"}` {
		t.Errorf("snapshot 1: %s", d)
	}
	if _, d := st.next(t); d != `{"email":"b@x","state":"away"}` {
		t.Errorf("snapshot 2: %s", d)
	}
	b.set("a@x", rules.Busy)
	id, d := st.next(t)
	if d != `{"email":"a@x","state":"busy"}` || !strings.HasSuffix(id, "-1") {
		t.Errorf("change: id %s %s", id, d)
	}
	stop()
	// While away: two changes, one for someone else.
	b.set("b@x", rules.DND)
	b.set("c@x", rules.XA)
	time.Sleep(50 * time.Millisecond)
	st, stop = openStream(t, srv.URL+"/api/v1/presence/stream?email=a@x&email=b@x", id)
	if id2, d := st.next(t); d != `{"email":"b@x","state":"dnd"}` || !strings.HasSuffix(id2, "-2") {
		t.Errorf("resumed: id %s %s, want only the missed change", id2, d)
	}
	stop()
	// An id from before a restart (another epoch): a fresh snapshot.
	st, stop = openStream(t, srv.URL+"/api/v1/presence/stream?email=a@x", "k0-1")
	if _, d := st.next(t); d != `{"email":"a@x","state":"busy"}` {
		t.Errorf("old epoch: %s, want the snapshot", d)
	}
	stop()
	// One caller may not hold more than MaxStreams open.
	var stops []func()
	for range 10 {
		_, stop := openStream(t, srv.URL+"/api/v1/presence/stream?email=a@x", "")
		stops = append(stops, stop)
	}
	resp, err := http.Get(srv.URL + "/api/v1/presence/stream?email=a@x")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("11th stream: %d, want 429", resp.StatusCode)
	}
	resp.Body.Close()
	for _, stop := range stops {
		stop()
	}
	// Bad requests are JSON errors, not streams.
	resp, _ = http.Get(srv.URL + "/api/v1/presence/stream")
	if resp.StatusCode != 400 {
		t.Errorf("no email: %d", resp.StatusCode)
	}
	resp.Body.Close()
}

func TestStreamHeartbeat(t *testing.T) {
	old := Heartbeat
	Heartbeat = 50 * time.Millisecond
	defer func() { Heartbeat = old }()
	b := &liveBackend{states: map[string]rules.State{"a@x": rules.Available}, changes: make(chan string, 1)}
	reg := prometheus.NewRegistry()
	s, _ := New(Options{Anonymous: []string{"stream"}}, b, func() error { return nil }, reg, reg)
	srv := httptest.NewServer(s)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/v1/presence/stream?email=a@x")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	deadline := time.After(2 * time.Second)
	got := make(chan bool)
	go func() {
		for sc.Scan() {
			if sc.Text() == ": ping" {
				got <- true
				return
			}
		}
	}()
	select {
	case <-got:
	case <-deadline:
		t.Error("no heartbeat")
	}
}

// bigBackend answers one person whose status text is large, so a few
// events fill a socket's buffers.
type bigBackend struct{ liveBackend }

func (b *bigBackend) Lookup(email string) Entry {
	e := b.liveBackend.Lookup(email)
	e.Presence.Status = strings.Repeat("x", 64<<10)
	return e
}

// A client that stops reading is dropped within about two heartbeats of a
// blocked write, so it holds no goroutine, watch or stream slot.
func TestStreamDropsNonReadingClient(t *testing.T) {
	old := Heartbeat
	Heartbeat = 50 * time.Millisecond
	defer func() { Heartbeat = old }()
	b := &bigBackend{liveBackend{states: map[string]rules.State{"a@x": rules.Available}, changes: make(chan string, 1)}}
	reg := prometheus.NewRegistry()
	s, err := New(Options{Anonymous: []string{"stream"}, AnonymousVisibility: SeeStatus}, b, func() error { return nil }, reg, reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	open := func() int {
		s.streamsMu.Lock()
		defer s.streamsMu.Unlock()
		n := 0
		for _, v := range s.streams {
			n += v
		}
		return n
	}

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	if _, err := fmt.Fprintf(conn, "GET /api/v1/presence/stream?email=a@x HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); open() != 1; time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatal("the stream never opened")
		}
	}
	// Changes keep coming; the client reads nothing.
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			case b.changes <- "mb-a@x":
			}
		}
	}()
	for start := time.Now(); open() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatal("a client that reads nothing still holds its stream after 10 s")
		}
	}
	// The hub no longer fans out to it.
	s.hub.mu.Lock()
	watchers := len(s.hub.watches["mb-a@x"])
	s.hub.mu.Unlock()
	if watchers != 0 {
		t.Errorf("%d watchers left", watchers)
	}
}
