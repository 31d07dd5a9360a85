package web

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/presencegw/presencegw/rules"
)

// changingBackend is fakeBackend whose alice can change state, counting
// the lookups it answers; with versioned set it reports a version.
type changingBackend struct {
	fakeBackend
	lookups atomic.Int64
	mu      sync.Mutex
	state   rules.State // alice's, when set
	version uint64
}

func (b *changingBackend) Lookup(email string) Entry {
	b.lookups.Add(1)
	e := b.fakeBackend.Lookup(email)
	b.mu.Lock()
	defer b.mu.Unlock()
	if e.Email == "alice@example.com" && b.state != "" {
		e.Presence.State = b.state
	}
	return e
}

// set changes alice's state; bump says whether the version says so.
func (b *changingBackend) set(s rules.State, bump bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.state = s
	if bump {
		b.version++
	}
}

type versionedChangingBackend struct{ *changingBackend }

func (b versionedChangingBackend) Version() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.version
}

func changingServer(t *testing.T, b Backend) *Server {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := New(Options{Anonymous: []string{"presence"},
		APIKeys: []APIKey{{Name: "intranet", SHA256: HashKey(statusKey), Visibility: SeeStatus}}},
		b, func() error { return nil }, reg, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestAnswersReused: a single lookup's answer is rendered once per backend
// version and per what the caller may see, and rendered again after a
// change.
func TestAnswersReused(t *testing.T) {
	b := &changingBackend{}
	s := changingServer(t, versionedChangingBackend{b})
	at := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	s.answers.now = func() time.Time { return at } // reuse must not hang on the test's speed
	get := func(email, key string) (int, string) {
		t.Helper()
		code, h, body := do(s, "GET", "/api/v1/presence?email="+email, key, "")
		if h.Get("Cache-Control") != "private, no-store" || h.Get("Content-Type") != "application/json" {
			t.Errorf("%s: headers %v", email, h)
		}
		return code, strings.TrimSpace(body)
	}
	steps := []struct {
		name, email, key string
		change           func()
		code             int
		want             string
		lookups          int64 // the backend's, after the step
	}{
		{"first lookup", "alice@example.com", "", nil, 200, `{"email":"alice@example.com","state":"busy"}`, 1},
		{"again: reused", "alice@example.com", "", nil, 200, `{"email":"alice@example.com","state":"busy"}`, 1},
		{"a caller who sees more: its own answer", "alice@example.com", statusKey, nil, 200, `"status":"In a meeting until 14:30"`, 2},
		{"a change the version does not show is not seen (proves reuse)", "alice@example.com", "", func() { b.set(rules.Away, false) }, 200,
			`{"email":"alice@example.com","state":"busy"}`, 2},
		{"the version changes: rendered again", "alice@example.com", "", func() { b.set(rules.Away, true) }, 200,
			`{"email":"alice@example.com","state":"away"}`, 3},
		{"the other caller's answer too", "alice@example.com", statusKey, nil, 200, `"state":"away"`, 4},
		{"unknown, anonymous: 200 unknown", "nobody@example.com", "", nil, 200, `{"email":"nobody@example.com","state":"unknown"}`, 5},
		{"unknown, to a key: 404 (not the anonymous answer)", "nobody@example.com", statusKey, nil, 404, `"code":"not_found"`, 6},
		{"unknown again, to a key: reused 404", "nobody@example.com", statusKey, nil, 404, `"code":"not_found"`, 6},
		{"malformed: 400", "not-an-address", statusKey, nil, 400, `"code":"invalid_address"`, 7},
		{"malformed again: not kept", "not-an-address", statusKey, nil, 400, `"code":"invalid_address"`, 8},
		{"an over-long address: not kept", strings.Repeat("a", 320) + "@example.com", "", nil, 200, `"state":"unknown"`, 9},
		{"again", strings.Repeat("a", 320) + "@example.com", "", nil, 200, `"state":"unknown"`, 10},
		{"a second later: rendered again", "alice@example.com", "", func() { at = at.Add(answerTTL) }, 200,
			`{"email":"alice@example.com","state":"away"}`, 11},
	}
	for _, st := range steps {
		if st.change != nil {
			st.change()
		}
		code, body := get(st.email, st.key)
		if code != st.code || !strings.Contains(body, st.want) {
			t.Errorf("%s: %d %s, want %d with %s", st.name, code, body, st.code, st.want)
		}
		if n := b.lookups.Load(); n != st.lookups {
			t.Errorf("%s: the backend answered %d lookups, want %d", st.name, n, st.lookups)
		}
	}
}

// TestAnswersNotKeptWithoutVersion: a backend that cannot say when its
// answers change is asked every time.
func TestAnswersNotKeptWithoutVersion(t *testing.T) {
	b := &changingBackend{}
	s := changingServer(t, b)
	for i, want := range []rules.State{rules.Busy, rules.Away, rules.Busy} {
		if i > 0 {
			b.set(want, false)
		}
		if _, _, body := do(s, "GET", "/api/v1/presence?email=alice@example.com", "", ""); !strings.Contains(body, `"state":"`+string(want)+`"`) {
			t.Errorf("lookup %d: %s, want %s", i, body, want)
		}
	}
	if n := b.lookups.Load(); n != 3 {
		t.Errorf("the backend answered %d lookups, want 3", n)
	}
}

// TestAnswerCacheExpiryAndBound: an answer is reused for answerTTL at
// most, and a full cache starts over rather than grow.
func TestAnswerCacheExpiryAndBound(t *testing.T) {
	b := versionedChangingBackend{&changingBackend{}}
	c := newAnswerCache(b)
	t0 := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	k := answerKey{email: "alice@example.com"}
	_, v, ok := c.get(k, t0)
	if ok {
		t.Fatal("an empty cache answered")
	}
	c.put(k, v, t0, 200, []byte("one\n"))
	for _, tt := range []struct {
		at   time.Duration
		want bool
	}{{0, true}, {answerTTL - time.Nanosecond, true}, {answerTTL, false}, {time.Hour, false}} {
		a, _, ok := c.get(k, t0.Add(tt.at))
		if ok != tt.want || ok && string(a.body) != "one\n" {
			t.Errorf("at +%s: %v %v, want found %v", tt.at, a, ok, tt.want)
		}
	}
	if _, _, ok := c.get(answerKey{email: "alice@example.com", visibility: SeeStatus}, t0); ok {
		t.Error("another visibility got the answer")
	}
	for i := range maxAnswers {
		c.put(answerKey{email: fmt.Sprintf("u%d@example.com", i)}, v, t0, 200, []byte("x"))
	}
	if n := len(c.m); n != 1 {
		t.Errorf("after %d more answers the cache holds %d, want 1 (emptied when full)", maxAnswers, n)
	}
	// The kept key is a copy: it does not pin the request it came from.
	query := "email=bob@example.com&" + strings.Repeat("x", 4096)
	c.put(answerKey{email: query[len("email="):len("email=bob@example.com")]}, v, t0, 200, []byte("two\n"))
	for k := range c.m {
		if k.email == "bob@example.com" && unsafe.StringData(k.email) == unsafe.StringData(query[len("email="):]) {
			t.Error("the kept key shares the request's memory")
		}
	}
}

// TestAnswerCacheConcurrent: lookups and changes at once (for -race).
func TestAnswerCacheConcurrent(t *testing.T) {
	b := &changingBackend{}
	s := changingServer(t, versionedChangingBackend{b})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				if g == 0 && i%10 == 0 {
					b.set([]rules.State{rules.Away, rules.Busy}[i/10%2], true)
				}
				if code, _, _ := do(s, "GET", "/api/v1/presence?email=alice@example.com", "", ""); code != 200 {
					t.Errorf("status %d", code)
					return
				}
			}
		})
	}
	wg.Wait()
	b.set(rules.DND, true)
	if _, _, body := do(s, "GET", "/api/v1/presence?email=alice@example.com", "", ""); !strings.Contains(body, `"state":"dnd"`) {
		t.Errorf("after the last change: %s", body)
	}
}
