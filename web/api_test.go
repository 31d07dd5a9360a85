package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/presencegw/presencegw/rules"
)

// fakeBackend knows alice (busy in a meeting) and carol (available).
type fakeBackend struct{}

func (fakeBackend) Changes(int) (<-chan string, func()) {
	ch := make(chan string)
	return ch, func() {}
}

func (fakeBackend) Lookup(email string) Entry {
	e := strings.ToLower(strings.TrimSpace(email))
	if !strings.Contains(e, "@") {
		return Entry{Email: email, Status: Invalid, Err: fmt.Sprintf("%q is not an e-mail address", email)}
	}
	until := time.Date(2026, 11, 25, 14, 30, 0, 0, time.UTC)
	switch e {
	case "alice@example.com":
		return Entry{Email: e, Status: Found, JID: "alice@chat", Name: "Alice",
			Presence: rules.Output{State: rules.Busy, Status: "In a meeting until 14:30", Source: rules.SourceCalendar, Until: until,
				Calendar: rules.CalendarNow{State: rules.Busy, Until: until, Status: "In a meeting until 14:30", Subject: "Budget"}},
			Chat:    rules.Chat{Known: true, Resources: []rules.Resource{{Name: "pc", Status: "coding", Priority: 5}}},
			Updated: until.Add(-30 * time.Minute)}
	case "carol@example.com":
		return Entry{Email: e, Status: Found, JID: "carol@chat", Presence: rules.Output{State: rules.Available, Source: rules.SourceXMPP}}
	}
	return Entry{Email: e, Status: NotFound}
}

// LookupJID finds alice@chat and carol@chat.
func (b fakeBackend) LookupJID(jid string) Entry {
	if local, ok := strings.CutSuffix(strings.ToLower(jid), "@chat"); ok {
		return b.Lookup(local + "@example.com")
	}
	return Entry{Status: NotFound}
}

const (
	statusKey   = "status-key-0123456789"
	calendarKey = "calendar-key-0123456789"
)

func newServer(t testing.TB, change func(*Options)) *Server {
	t.Helper()
	o := Options{
		APIKeys: []APIKey{
			{Name: "intranet", SHA256: HashKey(statusKey), Visibility: SeeStatus},
			{Name: "addin", SHA256: HashKey(calendarKey), Visibility: SeeCalendar},
		},
		CORSOrigins: []string{"https://outlook.example.com"},
		MaxBatch:    3,
	}
	if change != nil {
		change(&o)
	}
	reg := prometheus.NewRegistry()
	s, err := New(o, fakeBackend{}, func() error { return nil }, reg, reg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func do(s http.Handler, method, target, key, body string) (int, http.Header, string) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w.Code, w.Header(), w.Body.String()
}

func TestGetPresence(t *testing.T) {
	s := newServer(t, func(o *Options) { o.Anonymous = []string{"presence"} })
	tests := []struct {
		name, target, key string
		code              int
		want              string // exact JSON
	}{
		{"anonymous sees the state only", "/api/v1/presence?email=Alice@Example.com", "", 200,
			`{"email":"alice@example.com","state":"busy"}`},
		{"a status key sees status, until, name, jid", "/api/v1/presence?email=alice@example.com", statusKey, 200,
			`{"email":"alice@example.com","jid":"alice@chat","name":"Alice","state":"busy","status":"In a meeting until 14:30","source":"calendar","until":"2026-11-25T14:30:00Z","updated":"2026-11-25T14:00:00Z"}`},
		{"a calendar key sees the calendar and chat", "/api/v1/presence?email=alice@example.com", calendarKey, 200,
			`{"email":"alice@example.com","jid":"alice@chat","name":"Alice","state":"busy","status":"In a meeting until 14:30","source":"calendar","until":"2026-11-25T14:30:00Z","updated":"2026-11-25T14:00:00Z","calendar":{"state":"busy","status":"In a meeting until 14:30","until":"2026-11-25T14:30:00Z","subject":"Budget"},"chat":{"online":true,"resources":[{"name":"pc","status":"coding","priority":5}]}}`},
		{"unknown to anonymous: the same as anyone unknown, no 404", "/api/v1/presence?email=nobody@example.com", "", 200,
			`{"email":"nobody@example.com","state":"unknown"}`},
		{"unknown to a key: 404", "/api/v1/presence?email=nobody@example.com", statusKey, 404,
			`{"error":{"code":"not_found","message":"no person has this address"}}`},
		{"malformed address", "/api/v1/presence?email=not-an-address", statusKey, 400,
			`{"error":{"code":"invalid_address","message":"\"not-an-address\" is not an e-mail address"}}`},
		{"no email", "/api/v1/presence", statusKey, 400,
			`{"error":{"code":"bad_request","message":"give exactly one email parameter"}}`},
		{"two emails", "/api/v1/presence?email=a@x&email=b@x", statusKey, 400,
			`{"error":{"code":"bad_request","message":"give exactly one email parameter"}}`},
		{"bad key", "/api/v1/presence?email=alice@example.com", "wrong", 401,
			`{"error":{"code":"unauthorized","message":"unknown or invalid token"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, h, body := do(s, "GET", tt.target, tt.key, "")
			if code != tt.code || strings.TrimSpace(body) != tt.want {
				t.Errorf("%d %s\nwant %d %s", code, body, tt.code, tt.want)
			}
			if h.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", h.Get("Content-Type"))
			}
		})
	}
}

func TestAuthentication(t *testing.T) {
	s := newServer(t, nil) // nothing anonymous
	code, h, body := do(s, "GET", "/api/v1/presence?email=alice@example.com", "", "")
	if code != 401 || h.Get("WWW-Authenticate") == "" || strings.Contains(body, "busy") {
		t.Errorf("anonymous without opt-in: %d %v %s", code, h, body)
	}
	req := httptest.NewRequest("GET", "/api/v1/presence?email=alice@example.com", nil)
	req.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != 401 || !strings.Contains(w.Body.String(), "Bearer") {
		t.Errorf("basic auth: %d %s", w.Code, w.Body.String())
	}
	if _, err := New(Options{APIKeys: []APIKey{{Name: "x", SHA256: "not hex"}}}, fakeBackend{}, nil, prometheus.NewRegistry(), prometheus.NewRegistry()); err == nil {
		t.Error("a malformed key hash was accepted")
	}
}

func TestBatch(t *testing.T) {
	s := newServer(t, nil)
	tests := []struct {
		name, body string
		code       int
		want       string
	}{
		{"results in order, errors per entry", `{"emails":["carol@example.com","nobody@example.com","bad"]}`, 200,
			`{"results":[{"email":"carol@example.com","jid":"carol@chat","state":"available","source":"xmpp"},{"email":"nobody@example.com","state":"unknown","error":{"code":"not_found","message":"no person has this address"}},{"email":"bad","state":"unknown","error":{"code":"invalid_address","message":"\"bad\" is not an e-mail address"}}]}`},
		{"empty list", `{"emails":[]}`, 200, `{"results":[]}`},
		{"too many", `{"emails":["a@x","b@x","c@x","d@x"]}`, 413,
			`{"error":{"code":"too_many","message":"at most 3 addresses per batch, not 4"}}`},
		{"not JSON", `emails=a@x`, 400, ``},
		{"wrong type", `{"emails":"a@x"}`, 400, ``},
		{"unknown field", `{"emails":[],"mails":[]}`, 400, ``},
		{"trailing data", `{"emails":[]} {}`, 400, ``},
		{"no emails", `{}`, 400, ``},
		{"too large", `{"emails":["` + strings.Repeat("a", 5000) + `@x"]}`, 413, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body := do(s, "POST", "/api/v1/presence/batch", statusKey, tt.body)
			if code != tt.code || tt.want != "" && strings.TrimSpace(body) != tt.want {
				t.Errorf("%d %s\nwant %d %s", code, body, tt.code, tt.want)
			}
			var e struct {
				Error *apiError `json:"error"`
			}
			if code >= 400 && (json.Unmarshal([]byte(body), &e) != nil || e.Error == nil || e.Error.Message == "" || strings.Contains(e.Error.Message, "main.") || strings.Contains(e.Error.Message, "web.")) {
				t.Errorf("error body %q is not a clear JSON error", body)
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	s := newServer(t, func(o *Options) { o.RatePerSecond, o.Burst = 1, 2 })
	var codes []int
	for range 3 {
		code, h, _ := do(s, "GET", "/api/v1/presence?email=alice@example.com", statusKey, "")
		codes = append(codes, code)
		if code == 429 && h.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	if fmt.Sprint(codes) != "[200 200 429]" {
		t.Errorf("codes %v, want the third limited", codes)
	}
	// Another caller has its own bucket.
	if code, _, _ := do(s, "GET", "/api/v1/presence?email=alice@example.com", calendarKey, ""); code != 200 {
		t.Errorf("other caller: %d", code)
	}
}

func TestCORS(t *testing.T) {
	s := newServer(t, nil)
	req := httptest.NewRequest("OPTIONS", "/api/v1/presence/batch", nil)
	req.Header.Set("Origin", "https://outlook.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != 204 || w.Header().Get("Access-Control-Allow-Origin") != "https://outlook.example.com" || !strings.Contains(w.Header().Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight from an allowed origin: %d %v", w.Code, w.Header())
	}
	req = httptest.NewRequest("GET", "/api/v1/presence?email=alice@example.com", nil)
	req.Header.Set("Origin", "https://evil.example.net")
	req.Header.Set("Authorization", "Bearer "+statusKey)
	w = httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS header for an origin not on the list: %v", w.Header())
	}
}

func TestLatencyMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := New(Options{Anonymous: []string{"presence"}}, fakeBackend{}, func() error { return errors.New("directory corp: not synced yet") }, reg, reg)
	if err != nil {
		t.Fatal(err)
	}
	do(s, "GET", "/api/v1/presence?email=alice@example.com", "", "")
	if code, _, body := do(s, "GET", "/readyz", "", ""); code != 503 || !strings.Contains(body, "not ready") {
		t.Errorf("/readyz = %d %s", code, body)
	}
	_, _, body := do(s, "GET", "/metrics", "", "")
	if !strings.Contains(body, `presencegw_http_request_duration_seconds_count{code="200",route="GET /api/v1/presence"} 1`) {
		t.Errorf("latency histogram missing:\n%.2000s", body)
	}
}

// Whatever the body, the batch endpoint answers 2xx or a JSON 4xx.
func FuzzBatchBody(f *testing.F) {
	for _, seed := range []string{`{"emails":["a@x"]}`, `{"emails":[1]}`, `[`, `{"emails":null}`, "\x00", `{"emails":["` + "\xff" + `"]}`} {
		f.Add(seed)
	}
	s := newServer(f, nil)
	f.Fuzz(func(t *testing.T, body string) {
		code, h, out := do(s, "POST", "/api/v1/presence/batch", statusKey, body)
		if code >= 500 || h.Get("Content-Type") != "application/json" || !json.Valid([]byte(out)) {
			t.Errorf("body %q: %d %s", body, code, out)
		}
	})
}

// Whatever the query, a lookup answers 2xx or a JSON 4xx.
func FuzzPresenceQuery(f *testing.F) {
	for _, seed := range []string{"email=a@x", "email=%zz", "email=&email=", "email=" + strings.Repeat("a", 400) + "@x"} {
		f.Add(seed)
	}
	s := newServer(f, func(o *Options) { o.Anonymous = []string{"presence"} })
	f.Fuzz(func(t *testing.T, query string) {
		req := httptest.NewRequest("GET", "/api/v1/presence", nil)
		req.URL.RawQuery = query
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code >= 500 || !json.Valid(w.Body.Bytes()) {
			t.Errorf("query %q: %d %s", query, w.Code, w.Body.String())
		}
	})
}

// Guessing keys is limited per client address, even across "callers".
func TestFailedAuthLimited(t *testing.T) {
	s := newServer(t, func(o *Options) { o.RatePerSecond, o.Burst = 1, 3 })
	var codes []int
	for i := range 5 {
		code, _, _ := do(s, "GET", "/api/v1/presence?email=alice@example.com", fmt.Sprintf("guess-%d", i), "")
		codes = append(codes, code)
	}
	if fmt.Sprint(codes) != "[401 401 401 429 429]" {
		t.Errorf("codes %v, want three failures then 429", codes)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "[2001:db8:1:2:3:4:5:6]:1234"
	if got := clientIP(req); got != "2001:db8:1:2::/64" {
		t.Errorf("clientIP(IPv6) = %s", got)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	s := newServer(t, nil)
	for _, tt := range []struct{ method, path, allow string }{
		{"PUT", "/api/v1/presence?email=a@x", "GET, HEAD"},
		{"GET", "/api/v1/presence/batch", "POST"},
		{"DELETE", "/badge/a@x.svg", "GET, HEAD"},
	} {
		code, h, body := do(s, tt.method, tt.path, statusKey, "")
		if code != 405 || h.Get("Allow") != tt.allow || !strings.Contains(body, "method_not_allowed") {
			t.Errorf("%s %s: %d Allow %q %s", tt.method, tt.path, code, h.Get("Allow"), body)
		}
	}
	if code, _, _ := do(s, "GET", "/api/v1/nope", statusKey, ""); code != 404 {
		t.Errorf("unknown path: %d", code)
	}
}

func TestReadyzDetailOnlyLocally(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := New(Options{}, fakeBackend{}, func() error { return errors.New("directory corp: ldap dial ldaps://dc1.corp.example: refused") }, reg, reg)
	if err != nil {
		t.Fatal(err)
	}
	for addr, detail := range map[string]bool{"127.0.0.1:5000": true, "192.0.2.7:5000": false} {
		req := httptest.NewRequest("GET", "/readyz", nil)
		req.RemoteAddr = addr
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != 503 || strings.Contains(w.Body.String(), "dc1.corp.example") != detail {
			t.Errorf("from %s: %d %s", addr, w.Code, w.Body.String())
		}
	}
}
