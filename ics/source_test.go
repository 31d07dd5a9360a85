package ics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/presencegw/presencegw/rules"
)

const feedTmpl = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nX-WR-TIMEZONE:Europe/Berlin\r\nBEGIN:VEVENT\r\nUID:%[1]s\r\nDTSTART;TZID=Europe/Berlin:20240312T%[2]s\r\nDURATION:PT1H\r\nSUMMARY:%[1]s\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"

// feedServer serves per-person feeds under /secret-token/<localpart>.ics
// the way real servers do: alice with an ETag (Nextcloud, Fastmail),
// bob with Last-Modified only, carol with neither (a static export),
// and failures for the rest.
type feedServer struct {
	mu      sync.Mutex
	bodies  map[string]string
	hits    map[string]int
	inm     map[string]string // If-None-Match seen, by person
	ims     map[string]string // If-Modified-Since seen
	inFly   atomic.Int32
	maxFly  atomic.Int32
	delay   time.Duration
	changed time.Time
}

func newFeedServer() *feedServer {
	return &feedServer{
		bodies: map[string]string{
			"alice": fmt.Sprintf(feedTmpl, "alice-1", "090000"),
			"bob":   fmt.Sprintf(feedTmpl, "bob-1", "100000"),
			"carol": fmt.Sprintf(feedTmpl, "carol-1", "110000"),
		},
		hits: map[string]int{}, inm: map[string]string{}, ims: map[string]string{},
		changed: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC),
	}
}

func (f *feedServer) set(who, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bodies[who] = body
	f.changed = f.changed.Add(time.Hour)
}

func (f *feedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.inFly.Add(1)
	defer f.inFly.Add(-1)
	for {
		m := f.maxFly.Load()
		if n <= m || f.maxFly.CompareAndSwap(m, n) {
			break
		}
	}
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	who := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/secret-token/"), ".ics")
	f.mu.Lock()
	f.hits[who]++
	f.inm[who] = r.Header.Get("If-None-Match")
	f.ims[who] = r.Header.Get("If-Modified-Since")
	body, ok := f.bodies[who]
	changed := f.changed
	f.mu.Unlock()
	etag := fmt.Sprintf(`"%x"`, len(body)+strings.Count(body, "2"))
	switch who {
	case "alice":
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	case "bob":
		w.Header().Set("Last-Modified", changed.Format(http.TimeFormat))
		if t, err := http.ParseTime(r.Header.Get("If-Modified-Since")); err == nil && !changed.After(t) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	case "erin":
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	case "frank":
		w.Header().Set("Content-Type", "text/calendar")
		_, _ = w.Write([]byte(strings.Repeat("X-PADDING:0123456789012345678901234567890123456789\r\n", 200)))
		return
	case "ivan":
		w.Header().Set("Content-Length", "1000000")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("BEGIN:VCALENDAR\r\n"))
		return
	case "grace":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<!DOCTYPE html>\n<html><body>Please log in</body></html>\n"))
		return
	case "heidi":
		time.Sleep(300 * time.Millisecond)
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/calendar; charset=utf-8")
	_, _ = w.Write([]byte(body))
}

func newTestSource(t *testing.T, srv *httptest.Server, cfg Config) *Source {
	t.Helper()
	urls, err := URLTemplate(srv.URL + "/secret-token/{{.localpart}}.ics")
	if err != nil {
		t.Fatal(err)
	}
	cfg.URL = func(mailbox string) (string, bool) {
		if strings.HasPrefix(mailbox, "nobody@") {
			return "", false
		}
		return urls(mailbox)
	}
	if cfg.MaxSize == 0 {
		cfg.MaxSize = 4 << 10
	}
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return winStart } // the feeds are of 2024: nothing is pruned
	return s
}

var (
	winStart = time.Date(2024, 3, 12, 0, 0, 0, 0, time.UTC)
	winEnd   = time.Date(2024, 3, 13, 0, 0, 0, 0, time.UTC)
)

func byMailbox(t *testing.T, facts []rules.MailboxFacts, mailboxes []string) map[string]rules.MailboxFacts {
	t.Helper()
	if len(facts) != len(mailboxes) {
		t.Fatalf("%d facts for %d mailboxes", len(facts), len(mailboxes))
	}
	m := map[string]rules.MailboxFacts{}
	for i, f := range facts {
		if f.Mailbox != mailboxes[i] {
			t.Fatalf("facts[%d] is %s, want %s (same order)", i, f.Mailbox, mailboxes[i])
		}
		m[strings.Split(f.Mailbox, "@")[0]] = f
	}
	return m
}

func TestSourceConditionalRequestsAndErrors(t *testing.T) {
	fs := newFeedServer()
	srv := httptest.NewServer(fs)
	defer srv.Close()
	s := newTestSource(t, srv, Config{Timeout: 150 * time.Millisecond})
	mailboxes := []string{"alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com",
		"erin@example.com", "frank@example.com", "grace@example.com", "heidi@example.com", "ivan@example.com", "nobody@example.com"}
	ctx := context.Background()

	facts, err := s.Schedules(ctx, mailboxes, winStart, winEnd)
	if err != nil {
		t.Fatal(err)
	}
	m := byMailbox(t, facts, mailboxes)
	berlin := mustZone(t, "Europe/Berlin")
	for who, hour := range map[string]int{"alice": 9, "bob": 10, "carol": 11} {
		f := m[who]
		if f.Err != nil || len(f.Events) != 1 {
			t.Fatalf("%s: %v, %d events", who, f.Err, len(f.Events))
		}
		if want := time.Date(2024, 3, 12, hour, 0, 0, 0, berlin); !f.Events[0].Start.Equal(want) || f.Events[0].End.Sub(want) != time.Hour {
			t.Errorf("%s: event %v–%v, want %v for an hour", who, f.Events[0].Start, f.Events[0].End, want)
		}
		if f.Location == nil || f.Location.String() != "Europe/Berlin" {
			t.Errorf("%s: location %v, want the feed's X-WR-TIMEZONE", who, f.Location)
		}
	}
	var se *StatusError
	if err := m["dave"].Err; !errors.As(err, &se) || se.Status != 404 {
		t.Errorf("dave: %v, want HTTP 404", err)
	}
	if err := m["erin"].Err; !errors.As(err, &se) || se.Status != 500 {
		t.Errorf("erin: %v, want HTTP 500", err)
	}
	if err := m["frank"].Err; !errors.Is(err, ErrTooLarge) {
		t.Errorf("frank: %v, want ErrTooLarge", err)
	}
	if err := m["ivan"].Err; !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "1000000 bytes") {
		t.Errorf("ivan: %v, want ErrTooLarge from the Content-Length", err)
	}
	if err := m["grace"].Err; err == nil || !strings.Contains(err.Error(), "HTML page") || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("grace: %v, want an HTML-page error naming line 1", err)
	}
	if err := m["heidi"].Err; err == nil || !strings.Contains(err.Error(), "Timeout") && !strings.Contains(err.Error(), "deadline") {
		t.Errorf("heidi: %v, want a timeout", err)
	}
	if err := m["nobody"].Err; !errors.Is(err, ErrNoURL) {
		t.Errorf("nobody: %v, want ErrNoURL", err)
	}
	for _, f := range facts {
		if f.Err != nil && strings.Contains(f.Err.Error(), "secret-token") {
			t.Errorf("%s: error %q shows the feed's secret path", f.Mailbox, f.Err)
		}
	}

	// Second poll: alice's ETag and bob's Last-Modified give 304s, carol's
	// unchanged body is not parsed again.
	calBefore := map[string]*Calendar{}
	for _, e := range s.cache {
		if e.cal != nil {
			calBefore[fmt.Sprint(e.cal.Series, e.cal.Single, e.etag, e.lastMod)] = e.cal
		}
	}
	facts, err = s.Schedules(ctx, mailboxes[:3], winStart, winEnd)
	if err != nil {
		t.Fatal(err)
	}
	m = byMailbox(t, facts, mailboxes[:3])
	for _, who := range []string{"alice", "bob", "carol"} {
		if m[who].Err != nil || len(m[who].Events) != 1 {
			t.Errorf("%s second poll: %v, %d events", who, m[who].Err, len(m[who].Events))
		}
	}
	fs.mu.Lock()
	if fs.inm["alice"] == "" || fs.ims["bob"] == "" {
		t.Errorf("conditional headers not sent: If-None-Match %q, If-Modified-Since %q", fs.inm["alice"], fs.ims["bob"])
	}
	fs.mu.Unlock()
	st := s.Stats()
	if st.NotModified != 2 || st.Requests["not_modified"] != 2 || st.Requests["unchanged"] != 1 {
		t.Errorf("stats %+v: want 2 not modified (alice, bob) and 1 unchanged (carol)", st)
	}
	want := map[string]int64{"ok": 3, "http_4xx": 1, "http_5xx": 1, "too_large": 2, "invalid": 1, "network": 1}
	for k, v := range want {
		if st.Requests[k] != v {
			t.Errorf("requests[%s] = %d, want %d (%v)", k, st.Requests[k], v, st.Requests)
		}
	}
	if st.Bytes <= 0 {
		t.Error("no bytes counted")
	}

	// alice's feed changes: a new ETag, a full answer, the new event.
	fs.set("alice", fmt.Sprintf(feedTmpl, "alice-2", "140000"))
	fs.set("bob", fmt.Sprintf(feedTmpl, "bob-2", "150000"))
	facts, err = s.Schedules(ctx, mailboxes[:2], winStart, winEnd)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range facts {
		if f.Err != nil || len(f.Events) != 1 || !strings.HasSuffix(f.Events[0].Subject, "-2") {
			t.Errorf("%s after the change: %v %+v", f.Mailbox, f.Err, f.Events)
		}
	}
}

func TestSourceConcurrencyBound(t *testing.T) {
	fs := newFeedServer()
	fs.delay = 30 * time.Millisecond
	for i := range 12 {
		fs.bodies[fmt.Sprintf("p%d", i)] = fmt.Sprintf(feedTmpl, fmt.Sprintf("p%d", i), "090000")
	}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	s := newTestSource(t, srv, Config{Concurrency: 3})
	var a, b []string
	for i := range 12 {
		if i%2 == 0 {
			a = append(a, fmt.Sprintf("p%d@example.com", i))
		} else {
			b = append(b, fmt.Sprintf("p%d@example.com", i))
		}
	}
	var wg sync.WaitGroup
	for _, batch := range [][]string{a, b} {
		wg.Go(func() {
			facts, err := s.Schedules(context.Background(), batch, winStart, winEnd)
			if err != nil {
				t.Error(err)
				return
			}
			for _, f := range facts {
				if f.Err != nil || len(f.Events) != 1 {
					t.Errorf("%s: %v %d", f.Mailbox, f.Err, len(f.Events))
				}
			}
		})
	}
	wg.Wait()
	if got := fs.maxFly.Load(); got > 3 || got < 2 {
		t.Errorf("%d requests in flight at most, want 3 across both calls", got)
	}
}

func TestSourceContextCancelled(t *testing.T) {
	fs := newFeedServer()
	fs.delay = 200 * time.Millisecond
	srv := httptest.NewServer(fs)
	defer srv.Close()
	s := newTestSource(t, srv, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.Schedules(ctx, []string{"alice@example.com"}, winStart, winEnd); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Schedules = %v, want the context's error for the whole call", err)
	}
}

func TestSourceMinIntervalAndWebcal(t *testing.T) {
	fs := newFeedServer()
	srv := httptest.NewServer(fs)
	defer srv.Close()
	s, err := New(Config{
		URL:         URLMap(map[string]string{"Alice@Example.com": strings.Replace(srv.URL, "http://", "webcal://", 1) + "/secret-token/alice.ics"}),
		MinInterval: time.Hour,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return winStart }
	for range 3 {
		facts, err := s.Schedules(context.Background(), []string{"alice@example.com"}, winStart, winEnd)
		if err != nil || facts[0].Err != nil || len(facts[0].Events) != 1 {
			t.Fatalf("%v %+v", err, facts)
		}
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.hits["alice"] != 1 {
		t.Errorf("%d requests, want 1: MinInterval reuses the feed", fs.hits["alice"])
	}
	if st := s.Stats(); st.Requests["skipped"] != 2 {
		t.Errorf("stats %+v, want 2 skipped", st)
	}
}

func TestSourceAutoRepliesAndBatchSizes(t *testing.T) {
	s, err := New(Config{URL: URLMap(nil)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	facts, err := s.AutoReplies(context.Background(), []string{"a@example.com", "b@example.com"})
	if err != nil || len(facts) != 2 {
		t.Fatal(err, facts)
	}
	for _, f := range facts {
		if f.Err != nil || f.AutoReply.Status != rules.AutoReplyDisabled {
			t.Errorf("%+v, want automatic replies disabled", f)
		}
	}
	if sched, replies := s.BatchSizes(); sched != 10 || replies < 100 {
		t.Errorf("BatchSizes = %d, %d", sched, replies)
	}
	if _, err := New(Config{}, nil); err == nil {
		t.Error("New without URL: no error")
	}
}

func TestSourceMetrics(t *testing.T) {
	fs := newFeedServer()
	srv := httptest.NewServer(fs)
	defer srv.Close()
	s := newTestSource(t, srv, Config{})
	for range 2 {
		if _, err := s.Schedules(context.Background(), []string{"alice@example.com", "dave@example.com"}, winStart, winEnd); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	if err := s.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetValue() + "}"
			}
			got[name] = m.GetCounter().GetValue()
		}
	}
	for name, want := range map[string]float64{
		"presencegw_ics_requests_total{ok}":           1,
		"presencegw_ics_requests_total{not_modified}": 1,
		"presencegw_ics_requests_total{http_4xx}":     2,
		"presencegw_ics_not_modified_total":           1,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v (all: %v)", name, got[name], want, got)
		}
	}
	if got["presencegw_ics_bytes_total"] <= 0 {
		t.Errorf("bytes_total = %v", got["presencegw_ics_bytes_total"])
	}
}

func TestURLTemplate(t *testing.T) {
	fn, err := URLTemplate("https://cloud.example.com/remote.php/dav/public-calendars/{{.localpart}}?export")
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"alice@example.com":     "https://cloud.example.com/remote.php/dav/public-calendars/alice?export",
		"a.b+c@example.com":     "https://cloud.example.com/remote.php/dav/public-calendars/a.b+c?export",
		"../admin@example.com":  "https://cloud.example.com/remote.php/dav/public-calendars/..%2Fadmin?export",
		"no-at-sign":            "https://cloud.example.com/remote.php/dav/public-calendars/no-at-sign?export",
		"\"q@x\"@example.com":   "https://cloud.example.com/remote.php/dav/public-calendars/%22q@x%22?export",
		"alice@sub.example.com": "https://cloud.example.com/remote.php/dav/public-calendars/alice?export",
	} {
		if got, ok := fn(in); !ok || got != want {
			t.Errorf("URL(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	fn, err = URLTemplate("https://{{.domain}}/cal/{{.raw.mailbox}}.ics")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := fn("bob@example.org"); got != "https://example.org/cal/bob@example.org.ics" {
		t.Errorf("got %q", got)
	}
	fn, err = URLTemplate(`{{if eq .domain "example.com"}}https://cal.example.com/{{.localpart}}.ics{{end}}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fn("carol@elsewhere.org"); ok {
		t.Error("an empty result must mean no feed")
	}
	for _, bad := range []string{"https://x/{{.localpart", "https://x/{{.nosuchfield}}", "ftp://x/{{.localpart}}", "{{.localpart}}"} {
		if _, err := URLTemplate(bad); err == nil {
			t.Errorf("URLTemplate(%q): no error", bad)
		}
	}
	m := URLMap(map[string]string{"Alice@Example.COM": "https://x/a.ics", "empty@example.com": ""})
	if u, ok := m(" alice@example.com "); !ok || u != "https://x/a.ics" {
		t.Errorf("URLMap: %q %v", u, ok)
	}
	if _, ok := m("empty@example.com"); ok {
		t.Error("URLMap: an empty URL must mean no feed")
	}
}

// A feed that turns invalid fails alone, and what was parsed before is
// not brought back by a later 304 for the broken body's ETag.
func TestSourceInvalidFeedForgetsValidators(t *testing.T) {
	fs := newFeedServer()
	srv := httptest.NewServer(fs)
	defer srv.Close()
	s := newTestSource(t, srv, Config{})
	poll := func() rules.MailboxFacts {
		facts, err := s.Schedules(context.Background(), []string{"alice@example.com"}, winStart, winEnd)
		if err != nil {
			t.Fatal(err)
		}
		return facts[0]
	}
	if f := poll(); f.Err != nil || len(f.Events) != 1 {
		t.Fatalf("%+v", f)
	}
	fs.set("alice", "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY;broken\r\n")
	if f := poll(); f.Err == nil || !strings.Contains(f.Err.Error(), "line 3") {
		t.Fatalf("broken feed: %v, want an error naming line 3", f.Err)
	}
	if f := poll(); f.Err == nil {
		t.Fatal("the broken feed again: no error (a 304 must not revive the old calendar)")
	}
	fs.mu.Lock()
	inm := fs.inm["alice"]
	fs.mu.Unlock()
	if inm != "" {
		t.Errorf("If-None-Match %q sent after a broken body", inm)
	}
	fs.set("alice", fmt.Sprintf(feedTmpl, "alice-3", "160000"))
	if f := poll(); f.Err != nil || len(f.Events) != 1 || f.Events[0].Subject != "alice-3" {
		t.Errorf("repaired feed: %+v", f)
	}
}
