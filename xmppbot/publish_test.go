package xmppbot

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmpp/stanza"

	"github.com/presencegw/presencegw/internal/presence"
	"github.com/presencegw/presencegw/rules"
)

// recorder is a mechanism that records what it is asked to do.
type recorder struct {
	mu      sync.Mutex
	applied []string // "jid show status" or "jid clear"
	held    map[string]overlay
	fail    map[string]error
	block   chan struct{} // when set, apply waits for it
}

func (r *recorder) name() string { return "recorder" }

func (r *recorder) apply(ctx context.Context, j string, o overlay, set bool) error {
	if r.block != nil {
		select {
		case <-r.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if set {
		r.applied = append(r.applied, j+" "+o.Show+" "+o.Status)
	} else {
		r.applied = append(r.applied, j+" clear")
	}
	return r.fail[j]
}

func (r *recorder) list(context.Context) (map[string]overlay, bool) {
	return r.held, r.held != nil
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.applied...)
}

// publisherBot is a Bot whose publisher sends to rec, with the given rate.
func publisherBot(t *testing.T, rate float64, burst int, rec *recorder) (*Bot, *conn) {
	t.Helper()
	b, _ := benchBot(t, 10)
	b.cfg.SendRate, b.cfg.Burst = rate, burst
	pub, err := newPublisher(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.pub = pub
	c := &conn{bot: b, done: make(chan struct{}), mech: rec}
	t.Cleanup(func() { close(c.done) })
	return b, c
}

func busyUntil(status string) rules.Output {
	return rules.Output{State: rules.Busy, Calendar: rules.CalendarNow{State: rules.Busy, Status: status}}
}

func waitApplied(t *testing.T, rec *recorder, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(rec.got()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("applied %v, want %d requests", rec.got(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // nothing more should come
	return rec.got()
}

// TestPublisherKeepsLatestOnly: while the server is slow, a person who
// changes many times is sent once more, with the latest state only.
func TestPublisherKeepsLatestOnly(t *testing.T) {
	rec := &recorder{held: map[string]overlay{}, block: make(chan struct{})}
	b, c := publisherBot(t, 1000, 1000, rec)
	b.pub.connected(c)
	b.pub.wish("u1@example.com", busyUntil("first"))
	time.Sleep(20 * time.Millisecond) // "first" is in flight, blocked
	for _, s := range []string{"second", "third", "fourth"} {
		b.pub.wish("u1@example.com", busyUntil(s))
	}
	close(rec.block)
	got := waitApplied(t, rec, 2)
	want := []string{"u1@example.test dnd first", "u1@example.test dnd fourth"}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("applied %q, want %q", got, want)
	}
}

// TestPublisherRate: a shared boundary is sent at the configured rate.
func TestPublisherRate(t *testing.T) {
	rec := &recorder{held: map[string]overlay{}}
	b, c := publisherBot(t, 50, 5, rec)
	b.pub.connected(c)
	start := time.Now()
	for i := range 10 {
		b.pub.wish(mailbox(i), busyUntil("meeting"))
	}
	waitApplied(t, rec, 10)
	// 5 at once (burst), then 5 at 50/s: at least 80 ms.
	if took := time.Since(start); took < 80*time.Millisecond {
		t.Errorf("10 requests at 50/s with burst 5 took %v, want ≥ 80ms", took)
	}
}

func mailbox(i int) string { return "u" + string(rune('0'+i)) + "@example.com" }

// TestPublisherReconcile: after a (re)connect the server's list decides:
// what it holds and is wanted is not sent again, what it holds and is not
// wanted is cleared, what is wanted and missing is set.
func TestPublisherReconcile(t *testing.T) {
	rec := &recorder{held: map[string]overlay{
		"u1@example.test": {Show: "xa", Status: "On holiday"},
		"u2@example.test": {Show: "dnd", Status: "stale"},
	}}
	b, c := publisherBot(t, 1000, 1000, rec)
	b.pub.wish("u1@example.com", rules.Output{Calendar: rules.CalendarNow{State: rules.OOF, Status: "On holiday"}})
	b.pub.wish("u3@example.com", busyUntil("meeting"))
	b.pub.connected(c)
	got := waitApplied(t, rec, 2)
	want := map[string]bool{"u2@example.test clear": true, "u3@example.test dnd meeting": true}
	if len(got) != 2 || !want[got[0]] || !want[got[1]] {
		t.Errorf("applied %q, want exactly %v", got, want)
	}
}

// TestPublisherRefusal: a refused overlay is not retried until the wish
// changes; a failed one (link trouble) is.
func TestPublisherRefusal(t *testing.T) {
	rec := &recorder{held: map[string]overlay{}, fail: map[string]error{
		"u1@example.test": stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound},
	}}
	b, c := publisherBot(t, 1000, 1000, rec)
	b.pub.connected(c)
	b.pub.wish("u1@example.com", busyUntil("meeting"))
	if got := waitApplied(t, rec, 1); len(got) != 1 {
		t.Errorf("a refused overlay was retried: %q", got)
	}
	b.pub.wish("u1@example.com", busyUntil("another meeting"))
	if got := waitApplied(t, rec, 2); len(got) != 2 {
		t.Errorf("a changed wish after a refusal: %q", got)
	}
}

// lossyEngine is an engine whose changes never arrive (all dropped).
type lossyEngine struct {
	probeEngine
	mu  sync.Mutex
	out map[string]rules.Output
}

func (e *lossyEngine) Mailboxes() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var mbs []string
	for mb := range e.out {
		mbs = append(mbs, mb)
	}
	return mbs
}

func (e *lossyEngine) Get(mb string) (rules.Output, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	o, ok := e.out[mb]
	return o, ok
}

// TestPublisherResync: a change the engine dropped is published at the
// next re-read.
func TestPublisherResync(t *testing.T) {
	old := resyncInterval
	resyncInterval = 30 * time.Millisecond
	t.Cleanup(func() { resyncInterval = old })
	rec := &recorder{held: map[string]overlay{}}
	b, c := publisherBot(t, 1000, 1000, rec)
	eng := &lossyEngine{out: map[string]rules.Output{"u1@example.com": {State: rules.Available}}}
	b.engine = eng
	b.pub.connected(c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.pub.follow(ctx, make(chan presence.Change)) }()
	t.Cleanup(func() { cancel(); <-done })
	eng.mu.Lock()
	eng.out["u1@example.com"] = busyUntil("missed change")
	eng.mu.Unlock()
	if got := waitApplied(t, rec, 1); got[0] != "u1@example.test dnd missed change" {
		t.Errorf("applied %q", got)
	}
}

// generationDirectory is a Directory with a generation the test moves.
type generationDirectory struct {
	Directory
	gen uint64
}

func (d *generationDirectory) Generation() uint64 { return d.gen }

// countingEngine counts the presences the publisher reads.
type countingEngine struct {
	*presence.Engine
	gets atomic.Int64
}

func (e *countingEngine) Get(id string) (rules.Output, bool) {
	e.gets.Add(1)
	return e.Engine.Get(id)
}

// TestPublisherResyncReadsOnlyChanged: the periodic re-read reads
// everyone once, then only the people the engine says changed since (a
// pass over 10,000 people re-derived each was 168 ms of CPU), and everyone
// again a fullResyncInterval later or after the directory changed.
func TestPublisherResyncReadsOnlyChanged(t *testing.T) {
	rec := &recorder{held: map[string]overlay{}}
	b, _ := publisherBot(t, 1000, 1000, rec)
	eng := &countingEngine{Engine: b.engine.(*presence.Engine)}
	b.engine = eng
	dir := &generationDirectory{Directory: b.dir}
	b.dir = dir
	tracked := int64(len(eng.Mailboxes()))
	steps := []struct {
		name   string
		change func()
		gets   int64 // in total, after the resync
	}{
		{"first: everyone", nil, tracked},
		{"nothing changed: nobody", nil, tracked},
		{"one chat presence: that one", func() {
			eng.SetChat("u3@example.com", rules.Chat{Known: true, Resources: []rules.Resource{{Name: "pc", Show: rules.ShowAway}}})
		}, tracked + 1},
		{"an untracked person's: nobody", func() {
			eng.SetChat("stranger@example.com", rules.Chat{Known: true, Resources: []rules.Resource{{Name: "pc"}}})
		}, tracked + 1},
		{"nothing since: nobody", nil, tracked + 1},
		// Everyone the engine holds, the stranger with a chat presence too.
		{"a minute after the last full re-read: everyone", func() {
			b.pub.lastFull = b.pub.lastFull.Add(-fullResyncInterval)
		}, 2*tracked + 2},
		{"then only who changed again", nil, 2*tracked + 2},
		{"a new directory index: everyone (a JID may have changed)", func() { dir.gen++ }, 3*tracked + 3},
		{"nothing since", nil, 3*tracked + 3},
	}
	for _, st := range steps {
		if st.change != nil {
			st.change()
		}
		b.pub.resync()
		if n := eng.gets.Load(); n != st.gets {
			t.Errorf("%s: %d reads in total, want %d", st.name, n, st.gets)
		}
	}
}
