package presence

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/presencegw/presencegw/internal/store"
	"github.com/presencegw/presencegw/rules"
)

// fakeSource is a CalendarSource whose calendars a test sets.
type fakeSource struct {
	mu        sync.Mutex
	events    map[string][]rules.Event
	replies   map[string]rules.AutoReply
	failing   map[string]bool // per-mailbox errors
	down      bool            // every call fails
	schedCall []call
	replyCall []call
	sizes     [2]int // batch sizes; default 20 and 50
}

type call struct {
	at        time.Time
	mailboxes []string
}

func newFake() *fakeSource {
	return &fakeSource{events: map[string][]rules.Event{}, replies: map[string]rules.AutoReply{}, failing: map[string]bool{}}
}

func (f *fakeSource) BatchSizes() (int, int) {
	if f.sizes[0] == 0 {
		return 20, 50
	}
	return f.sizes[0], f.sizes[1]
}

func (f *fakeSource) Schedules(_ context.Context, mbs []string, _, _ time.Time) ([]rules.MailboxFacts, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.schedCall = append(f.schedCall, call{time.Now(), mbs})
	if f.down {
		return nil, errors.New("graph is down")
	}
	out := make([]rules.MailboxFacts, len(mbs))
	for i, mb := range mbs {
		out[i] = rules.MailboxFacts{Mailbox: mb, Events: f.events[mb], Location: time.UTC}
		if f.failing[mb] {
			out[i].Err = errors.New("ErrorAccessDenied")
		}
	}
	return out, nil
}

func (f *fakeSource) AutoReplies(_ context.Context, mbs []string) ([]rules.MailboxFacts, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replyCall = append(f.replyCall, call{time.Now(), mbs})
	if f.down {
		return nil, errors.New("graph is down")
	}
	out := make([]rules.MailboxFacts, len(mbs))
	for i, mb := range mbs {
		out[i] = rules.MailboxFacts{Mailbox: mb, AutoReply: f.replies[mb]}
		if r, ok := f.replies[mb]; !ok || r.Status == "" {
			out[i].AutoReply.Status = rules.AutoReplyDisabled
		}
	}
	return out, nil
}

func (f *fakeSource) set(fn func(*fakeSource)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeSource) calls() (sched, replies []call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.schedCall...), append([]call(nil), f.replyCall...)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newEngine(t testing.TB, opts Options) (*Engine, *store.DB) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e, err := New(rules.DefaultPolicy(), opts, st, quiet())
	if err != nil {
		t.Fatal(err)
	}
	return e, st
}

// waitFor reads changes until one for mailbox has state, or fails.
func waitFor(t *testing.T, ch <-chan Change, mailbox string, state rules.State, within time.Duration) Change {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case c := <-ch:
			if c.Mailbox == mailbox && c.Output.State == state {
				return c
			}
		case <-deadline:
			t.Fatalf("no %s change for %s within %v", state, mailbox, within)
		}
	}
}

// The state flips at the meeting's start and end by the engine's own
// timers: the source is asked once, before.
func TestBoundaryFlipsWithoutPolling(t *testing.T) {
	e, _ := newEngine(t, Options{})
	e.Track([]string{"alice@example.com"})
	ch, stop := e.Subscribe(16)
	defer stop()
	start := time.Now().Add(300 * time.Millisecond)
	end := start.Add(300 * time.Millisecond)
	e.SetChat("alice@example.com", rules.Chat{Known: true, Resources: []rules.Resource{{Name: "pc", Status: "coding"}}})
	e.applySchedules([]rules.MailboxFacts{{Mailbox: "alice@example.com", Location: time.UTC,
		Events: []rules.Event{{Start: start, End: end, ShowAs: rules.ShowBusy}}}}, time.Now())
	busy := waitFor(t, ch, "alice@example.com", rules.Busy, 2*time.Second)
	if late := busy.At.Sub(start); late < 0 || late > 250*time.Millisecond {
		t.Errorf("busy at %v from the start, want within 250ms after (timer, not poll)", late)
	}
	if !strings.HasPrefix(busy.Output.Status, "In a meeting until ") {
		t.Errorf("status %q", busy.Output.Status)
	}
	back := waitFor(t, ch, "alice@example.com", rules.Available, 2*time.Second)
	if back.Output.Status != "coding" || back.At.Before(end) {
		t.Errorf("after the meeting: %+v at %v (end %v)", back.Output, back.At, end)
	}
	// Manual dnd is kept during a meeting.
	e.applySchedules([]rules.MailboxFacts{{Mailbox: "alice@example.com", Location: time.UTC,
		Events: []rules.Event{{Start: time.Now().Add(-time.Minute), End: time.Now().Add(time.Hour), ShowAs: rules.ShowBusy}}}}, time.Now())
	e.SetChat("alice@example.com", rules.Chat{Known: true, Resources: []rules.Resource{{Name: "pc", Show: rules.ShowDND, Status: "focus"}}})
	if out, _ := e.Get("Alice@Example.com"); out.State != rules.DND || out.Calendar.State != rules.Busy {
		t.Errorf("manual dnd in a meeting: %+v", out)
	}
}

// Each mailbox is read once per interval, in batches spread over it.
func TestPollerSpreadsBatches(t *testing.T) {
	e, _ := newEngine(t, Options{PollInterval: 1200 * time.Millisecond, AutoReplyInterval: 2400 * time.Millisecond})
	src := newFake()
	var ids []string
	for i := range 100 {
		ids = append(ids, fmt.Sprintf("user%03d@example.com", i))
	}
	e.Track(ids)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.Run(ctx, src) }()
	// Batches are due at 0, 240, …, 960ms (+ up to 24ms jitter); the next
	// cycle starts at 1200ms.
	time.Sleep(1100 * time.Millisecond)
	cancel()
	<-done
	sched, replies := src.calls()
	if len(sched) != 5 {
		t.Fatalf("%d schedule calls in the first interval, want 5 (100 mailboxes / 20)", len(sched))
	}
	seen := map[string]int{}
	for _, c := range sched {
		if len(c.mailboxes) != 20 {
			t.Errorf("batch of %d", len(c.mailboxes))
		}
		for _, m := range c.mailboxes {
			seen[m]++
		}
	}
	if len(seen) != 100 {
		t.Errorf("%d distinct mailboxes read, want 100", len(seen))
	}
	sort.Slice(sched, func(i, j int) bool { return sched[i].at.Before(sched[j].at) })
	for i := 1; i < len(sched); i++ {
		// Step 240ms, jitter up to 24ms.
		if gap := sched[i].at.Sub(sched[i-1].at); gap < 180*time.Millisecond {
			t.Errorf("batches %d and %d only %v apart: a burst", i-1, i, gap)
		}
	}
	if len(replies) < 1 || len(replies[0].mailboxes) != 50 {
		t.Errorf("auto-reply calls = %d, want batches of 50", len(replies))
	}
}

// A mailbox that fails alone is held back; a source outage keeps the
// last facts until the look-ahead runs out.
func TestFailuresAndOutage(t *testing.T) {
	e, _ := newEngine(t, Options{PollInterval: 100 * time.Millisecond, AutoReplyInterval: time.Hour, LookAhead: 700 * time.Millisecond, MailboxRetry: time.Hour})
	src := newFake()
	meeting := []rules.Event{{Start: time.Now().Add(-time.Minute), End: time.Now().Add(time.Hour), ShowAs: rules.ShowBusy}}
	src.set(func(f *fakeSource) {
		f.events["ok@example.com"] = meeting
		f.events["denied@example.com"] = meeting
		f.failing["denied@example.com"] = true
	})
	e.Track([]string{"ok@example.com", "denied@example.com"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx, src)
	time.Sleep(250 * time.Millisecond)
	if out, _ := e.Get("ok@example.com"); out.Calendar.State != rules.Busy {
		t.Fatalf("ok = %+v", out)
	}
	if out, _ := e.Get("denied@example.com"); out.Calendar.State != rules.Unknown {
		t.Errorf("denied = %+v, want no facts", out)
	}
	sched, _ := src.calls()
	deniedAsked := 0
	for _, c := range sched {
		for _, m := range c.mailboxes {
			if m == "denied@example.com" {
				deniedAsked++
			}
		}
	}
	if deniedAsked != 1 {
		t.Errorf("failing mailbox asked %d times in 2+ intervals, want once (held back)", deniedAsked)
	}
	// Outage: facts stay (stale) until the look-ahead runs out.
	src.set(func(f *fakeSource) { f.down = true })
	time.Sleep(300 * time.Millisecond)
	if out, _ := e.Get("ok@example.com"); out.Calendar.State != rules.Busy || !e.Stale("ok@example.com") {
		t.Errorf("during the outage: %+v stale=%v, want the last facts, marked stale", out, e.Stale("ok@example.com"))
	}
	time.Sleep(500 * time.Millisecond)
	if out, _ := e.Get("ok@example.com"); out.Calendar.State != rules.Unknown {
		t.Errorf("after the look-ahead: %+v, want the facts expired", out)
	}
}

func TestOptOutSurvivesRestart(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e, _ := New(rules.DefaultPolicy(), Options{}, st, quiet())
	if err := e.SetOptOut("Bob@example.com", true); err != nil {
		t.Fatal(err)
	}
	e2, err := New(rules.DefaultPolicy(), Options{}, st, quiet())
	if err != nil {
		t.Fatal(err)
	}
	e2.Track([]string{"bob@example.com"})
	e2.applySchedules([]rules.MailboxFacts{{Mailbox: "bob@example.com", Events: []rules.Event{{Start: time.Now().Add(-time.Minute), End: time.Now().Add(time.Hour), ShowAs: rules.ShowBusy}}}}, time.Now())
	e2.applyAutoReplies([]rules.MailboxFacts{{Mailbox: "bob@example.com", AutoReply: rules.AutoReply{Status: rules.AutoReplyAlways}}}, time.Now())
	if !e2.OptedOut("bob@example.com") {
		t.Fatal("opt-out lost on restart")
	}
	if out, _ := e2.Get("bob@example.com"); out.Calendar.State != rules.Unknown || out.State == rules.Busy || out.State == rules.OOF {
		t.Errorf("opted-out person shows the calendar: %+v", out)
	}
	if err := e2.SetOptOut("bob@example.com", false); err != nil {
		t.Fatal(err)
	}
	if out, _ := e2.Get("bob@example.com"); out.State != rules.OOF {
		t.Errorf("after opting back in: %+v, want OOF", out)
	}
}

// An opt-out written by another process (the CLI) reaches a running
// engine at its next poll cycle.
func TestOptOutFromAnotherProcess(t *testing.T) {
	e, st := newEngine(t, Options{PollInterval: 100 * time.Millisecond, AutoReplyInterval: time.Hour})
	src := newFake()
	src.set(func(f *fakeSource) {
		f.events["carl@example.com"] = []rules.Event{{Start: time.Now().Add(-time.Minute), End: time.Now().Add(time.Hour), ShowAs: rules.ShowBusy}}
	})
	e.Track([]string{"carl@example.com"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx, src)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if out, _ := e.Get("carl@example.com"); out.State == rules.Busy {
			break
		}
	}
	if out, _ := e.Get("carl@example.com"); out.State != rules.Busy {
		t.Fatalf("before: %+v", out)
	}
	cli, err := New(rules.DefaultPolicy(), Options{}, st, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.SetOptOut("carl@example.com", true); err != nil {
		t.Fatal(err)
	}
	time.Sleep(250 * time.Millisecond)
	if out, _ := e.Get("carl@example.com"); out.State == rules.Busy || !e.OptedOut("carl@example.com") {
		t.Errorf("after the CLI opted out: %+v", out)
	}
}

// When facts run out (an outage longer than the look-ahead), subscribers
// are told, not only Get.
func TestExpiryIsPublished(t *testing.T) {
	e, _ := newEngine(t, Options{LookAhead: 400 * time.Millisecond, AutoReplyInterval: 100 * time.Millisecond})
	e.Track([]string{"ann@example.com"})
	ch, stop := e.Subscribe(16)
	defer stop()
	now := time.Now()
	e.applySchedules([]rules.MailboxFacts{{Mailbox: "ann@example.com", Events: []rules.Event{{Start: now.Add(-time.Minute), End: now.Add(time.Hour), ShowAs: rules.ShowBusy}}}}, now)
	e.applyAutoReplies([]rules.MailboxFacts{{Mailbox: "ann@example.com", AutoReply: rules.AutoReply{Status: rules.AutoReplyAlways, Message: "away"}}}, now)
	waitFor(t, ch, "ann@example.com", rules.OOF, time.Second)
	// The auto-reply setting expires first (3 × 100ms), then the schedule.
	waitFor(t, ch, "ann@example.com", rules.Busy, 2*time.Second)
	gone := waitFor(t, ch, "ann@example.com", rules.Unknown, 2*time.Second)
	if gone.At.Sub(now) < 400*time.Millisecond {
		t.Errorf("facts expired after %v, want the 400ms look-ahead", gone.At.Sub(now))
	}
}

// Opted-out and untracked mailboxes are not read; a failed auto-reply read
// holds only that read back.
func TestWhatIsPolled(t *testing.T) {
	e, _ := newEngine(t, Options{MailboxRetry: time.Hour})
	if err := e.SetOptOut("out@example.com", true); err != nil {
		t.Fatal(err)
	}
	e.Track([]string{"a@example.com", "out@example.com", "b@example.com"})
	e.SetChat("chat-only@example.com", rules.Chat{Known: true})
	e.applyAutoReplies([]rules.MailboxFacts{{Mailbox: "b@example.com", Err: errors.New("denied")}}, time.Now())
	now := time.Now()
	if got := fmt.Sprint(e.batches("schedules", newFake(), now)); got != "[[a@example.com b@example.com]]" {
		t.Errorf("schedule batches = %s", got)
	}
	if got := fmt.Sprint(e.batches("autoreplies", newFake(), now)); got != "[[a@example.com]]" {
		t.Errorf("auto-reply batches = %s", got)
	}
	e.Track([]string{"a@example.com"})
	if got := fmt.Sprint(e.batches("schedules", newFake(), now)); got != "[[a@example.com]]" {
		t.Errorf("after b left the directory: %s", got)
	}
	if !e.OptedOut("out@example.com") {
		t.Error("leaving the directory dropped an opt-out")
	}
}

// TestChatCopy: Chat returns what SetChat recorded, as a copy.
func TestChatCopy(t *testing.T) {
	e, _ := newEngine(t, Options{})
	if c := e.Chat("nobody@example.com"); c.Known || len(c.Resources) != 0 {
		t.Errorf("unknown mailbox: %+v", c)
	}
	want := rules.Chat{Known: true, Resources: []rules.Resource{{Name: "pc", Show: rules.ShowChat, Priority: 3}}}
	e.SetChat("Alice@example.com", want)
	got := e.Chat("alice@example.com")
	if !got.Known || len(got.Resources) != 1 || got.Resources[0] != want.Resources[0] {
		t.Fatalf("Chat = %+v, want %+v", got, want)
	}
	got.Resources[0].Show = rules.ShowDND
	if e.Chat("alice@example.com").Resources[0].Show != rules.ShowChat {
		t.Error("Chat shares its slice with the engine")
	}
}

// TestVersion: the version moves with every change a lookup could show
// (presence, chat presence, a mailbox added or dropped) and stays with a
// poll that changes nothing, so the web server's kept answers last
// between changes.
func TestVersion(t *testing.T) {
	e, _ := newEngine(t, Options{})
	now := time.Now()
	meeting := []rules.Event{{Start: now.Add(-time.Minute), End: now.Add(time.Hour), ShowAs: rules.ShowBusy}}
	last := e.Version()
	steps := []struct {
		name  string
		do    func()
		moves bool
	}{
		{"a mailbox tracked", func() { e.Track([]string{"alice@example.com"}) }, true},
		{"tracked again", func() { e.Track([]string{"alice@example.com"}) }, false},
		{"a meeting now", func() {
			e.applySchedules([]rules.MailboxFacts{{Mailbox: "alice@example.com", Location: time.UTC, Events: meeting}}, now)
		}, true},
		{"the same facts polled again", func() {
			e.applySchedules([]rules.MailboxFacts{{Mailbox: "alice@example.com", Location: time.UTC, Events: meeting}}, now.Add(time.Second))
		}, false},
		{"chat presence", func() {
			e.SetChat("alice@example.com", rules.Chat{Known: true, Resources: []rules.Resource{{Name: "pc", Status: "coding"}}})
		}, true},
		{"a chat status that leaves the state as it was", func() {
			e.SetChat("alice@example.com", rules.Chat{Known: true, Resources: []rules.Resource{{Name: "pc", Status: "lunch soon"}}})
		}, true},
		{"the meeting cancelled", func() {
			e.applySchedules([]rules.MailboxFacts{{Mailbox: "alice@example.com", Location: time.UTC}}, now.Add(2*time.Second))
		}, true},
		{"the mailbox dropped", func() { e.Track(nil) }, true},
	}
	for _, st := range steps {
		st.do()
		v := e.Version()
		if moved := v != last; moved != st.moves {
			t.Errorf("%s: version %d → %d, want moved=%v", st.name, last, v, st.moves)
		}
		last = v
	}
}

// TestChangedSince: the mailboxes whose presence or facts changed since a
// version, including a meeting added or cancelled ahead, which changes
// nothing now and so is no Change.
func TestChangedSince(t *testing.T) {
	e, _ := newEngine(t, Options{})
	ch, stop := e.Subscribe(16)
	defer stop()
	now := time.Now()
	tomorrow := []rules.Event{{Start: now.Add(24 * time.Hour), End: now.Add(25 * time.Hour), ShowAs: rules.ShowBusy, Subject: "Review"}}
	poll := func(alice []rules.Event) {
		e.applySchedules([]rules.MailboxFacts{{Mailbox: "alice@example.com", Location: time.UTC, Events: alice},
			{Mailbox: "bob@example.com", Location: time.UTC}}, time.Now())
	}
	e.Track([]string{"alice@example.com", "bob@example.com"})
	poll(nil)
	ids, v := e.ChangedSince(0)
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"alice@example.com", "bob@example.com"}) {
		t.Errorf("since 0: %q, want both", ids)
	}
	drain := func() (n int) {
		for {
			select {
			case <-ch:
				n++
			default:
				return n
			}
		}
	}
	drain()
	steps := []struct {
		name string
		do   func()
		want []string
	}{
		{"the same facts again", func() { poll(nil) }, nil},
		{"a meeting added tomorrow", func() { poll(tomorrow) }, []string{"alice@example.com"}},
		{"polled again unchanged", func() { poll(tomorrow) }, nil},
		{"the meeting moved", func() {
			moved := slices.Clone(tomorrow)
			moved[0].Start = moved[0].Start.Add(time.Hour)
			poll(moved)
		}, []string{"alice@example.com"}},
		{"the meeting cancelled", func() { poll(nil) }, []string{"alice@example.com"}},
		{"out of office scheduled for next week", func() {
			e.applyAutoReplies([]rules.MailboxFacts{{Mailbox: "bob@example.com", AutoReply: rules.AutoReply{Status: rules.AutoReplyScheduled,
				Start: now.Add(7 * 24 * time.Hour), End: now.Add(8 * 24 * time.Hour), Message: "Away"}}}, time.Now())
		}, []string{"bob@example.com"}},
		{"an untracked mailbox's chat presence", func() {
			e.SetChat("carol@example.com", rules.Chat{Known: true, Resources: []rules.Resource{{Name: "pc"}}})
		}, nil},
		{"a tracked one's chat presence", func() {
			e.SetChat("bob@example.com", rules.Chat{Known: true, Resources: []rules.Resource{{Name: "pc"}}})
		}, []string{"bob@example.com"}},
	}
	for _, st := range steps {
		st.do()
		var got []string
		got, v = e.ChangedSince(v)
		if !slices.Equal(got, st.want) {
			t.Errorf("%s: changed %q, want %q", st.name, got, st.want)
		}
		if n := drain(); !strings.Contains(st.name, "chat") && n != 0 {
			t.Errorf("%s: %d changes on Subscribe; only a change of presence now is one", st.name, n)
		}
	}
}
