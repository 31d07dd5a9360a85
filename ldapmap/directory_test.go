package ldapmap

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/presencegw/presencegw/internal/store"
	"github.com/presencegw/presencegw/internal/testenv"
)

// fakeSource is a Source whose answers a test scripts.
type fakeSource struct {
	name string
	prio int

	mu      sync.Mutex
	full    *Snapshot
	delta   *Delta
	err     error
	calls   []time.Time
	blockCh chan struct{} // when set, Full waits for it to close
}

func (f *fakeSource) Name() string  { return f.name }
func (f *fakeSource) Priority() int { return f.prio }

func (f *fakeSource) Full(ctx context.Context, _ func(int)) (*Snapshot, error) {
	f.mu.Lock()
	f.calls = append(f.calls, time.Now())
	block, snap, err := f.blockCh, f.full, f.err
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return snap, err
}

func (f *fakeSource) Changes(context.Context, Cursor) (*Delta, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, time.Now())
	if f.err != nil {
		return nil, f.err
	}
	if f.delta == nil {
		return &Delta{Cursor: Cursor{Mark: "1"}}, nil
	}
	d := f.delta
	f.delta = nil
	return d, nil
}

func (f *fakeSource) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func (f *fakeSource) set(fn func(f *fakeSource)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func snapshot(people ...*Person) *Snapshot {
	s := &Snapshot{People: map[string]*Person{}, Cursor: Cursor{Mark: "1"}}
	for _, p := range people {
		s.People[p.Key()] = p
	}
	return s
}

func openFake(t *testing.T, path string, log *slog.Logger, sources ...Source) (*Directory, *store.DB) {
	t.Helper()
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	d, err := New(sources, st, log)
	if err != nil {
		t.Fatal(err)
	}
	return d, st
}

// An entry both removed (disabled search) and changed (re-enabled before
// the enabled search) in one incremental sync stays, in memory and in the
// store alike.
func TestReenabledInOneSync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	alice := person("f", "cn=alice", "alice@chat", "alice@example.com")
	src := &fakeSource{name: "f", full: snapshot(alice)}
	d, st := openFake(t, path, quietLog(), src)
	if _, err := d.SyncFull(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	alice2 := person("f", "cn=alice", "alice@chat", "alice@example.com", "a@example.com")
	src.set(func(f *fakeSource) {
		f.delta = &Delta{Changed: []*Person{alice2}, Removed: []string{"cn=alice"}, Cursor: Cursor{Mark: "2"}}
	})
	if _, err := d.SyncIncremental(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkResolve(t, d, []want{{query: "a@example.com", status: StatusResolved, jid: "alice@chat"}})
	st.Close()
	d, _ = openFake(t, path, quietLog(), src)
	checkResolve(t, d, []want{{query: "a@example.com", status: StatusResolved, jid: "alice@chat"}})
}

// failingCursors is a store that cannot save cursors.
type failingCursors struct{ *store.DB }

func (f failingCursors) Write(bucket string, reset bool, puts map[string][]byte, dels []string) error {
	if bucket == bucketCursors && len(puts) > 0 {
		return errors.New("disk full")
	}
	return f.DB.Write(bucket, reset, puts, dels)
}

// When the cursor cannot be saved, the people read are still served.
func TestCursorWriteFailureStillServes(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	src := &fakeSource{name: "f", full: snapshot(person("f", "cn=bob", "bob@chat", "bob@example.com"))}
	d, err := New([]Source{src}, failingCursors{st}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.SyncFull(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("sync error = %v, want the store's", err)
	}
	checkResolve(t, d, []want{{query: "bob@example.com", status: StatusResolved, jid: "bob@chat"}})
}

// A sync waiting on a slow directory must not hold up health checks or
// overrides.
func TestSyncDoesNotBlockHealthOrOverrides(t *testing.T) {
	block := make(chan struct{})
	src := &fakeSource{name: "slow", full: snapshot(person("slow", "cn=a", "a@chat", "a@example.com")), blockCh: block}
	d, _ := openFake(t, filepath.Join(t.TempDir(), "state.db"), quietLog(), src)
	done := make(chan error)
	go func() {
		_, err := d.SyncFull(context.Background(), nil)
		done <- err
	}()
	for src.callCount() == 0 {
		time.Sleep(time.Millisecond)
	}
	answered := make(chan struct{})
	go func() {
		d.Health()
		if _, err := d.SetOverride(Override{Address: "x@example.com", JID: "x@chat"}); err != nil {
			t.Error(err)
		}
		close(answered)
	}()
	select {
	case <-answered:
	case <-time.After(5 * time.Second):
		t.Fatal("Health/SetOverride blocked by a running sync")
	}
	close(block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checkResolve(t, d, []want{
		{query: "a@example.com", status: StatusResolved, jid: "a@chat"},
		{query: "x@example.com", status: StatusResolved, jid: "x@chat"},
	})
}

// One failing source backs off on its own; the healthy one keeps its pace.
func TestRunBacksOffPerSource(t *testing.T) {
	good := &fakeSource{name: "good", full: snapshot(person("good", "cn=g", "g@chat", "g@example.com"))}
	bad := &fakeSource{name: "bad", err: errors.New("server down")}
	d, _ := openFake(t, filepath.Join(t.TempDir(), "state.db"), quietLog(), good, bad)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(ctx, Schedule{Incremental: 20 * time.Millisecond, Full: time.Hour, MinBackoff: 40 * time.Millisecond, MaxBackoff: 160 * time.Millisecond})
	}()
	time.Sleep(1200 * time.Millisecond)
	bad.set(func(f *fakeSource) { f.err = nil; f.full = snapshot(person("bad", "cn=b", "b@chat", "b@example.com")) })
	deadline := time.Now().Add(5 * time.Second)
	for d.Resolve("b@example.com").Status != StatusResolved && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if d.Resolve("b@example.com").Status != StatusResolved {
		t.Fatal("the failing source did not recover")
	}
	good.mu.Lock()
	bad.mu.Lock()
	defer good.mu.Unlock()
	defer bad.mu.Unlock()
	// In 1.2 s: the healthy source every ~20 ms, the failing one after
	// 40, 80, 160, 160, … ms: about 1 + 1200/20 versus 1 + 3 + 6.
	if len(good.calls) < 15 {
		t.Errorf("healthy source synced %d times in 1.2s, want it unaffected (~60)", len(good.calls))
	}
	var gaps []time.Duration
	for i := 1; i < len(bad.calls); i++ {
		gaps = append(gaps, bad.calls[i].Sub(bad.calls[i-1]))
	}
	if len(gaps) < 4 || len(gaps) > 15 {
		t.Fatalf("failing source tried %d times: %v", len(bad.calls), gaps)
	}
	if gaps[0] < 35*time.Millisecond || gaps[1] < 75*time.Millisecond || gaps[2] < 150*time.Millisecond {
		t.Errorf("retries not backing off exponentially: %v", gaps[:3])
	}
	for _, g := range gaps[3 : len(gaps)-1] {
		if g < 150*time.Millisecond || g > 400*time.Millisecond {
			t.Errorf("retry gap %v, want the 160ms cap", g)
		}
	}
}

// Conflicts are logged when they appear or change, not at every sync.
func TestConflictsLoggedOnce(t *testing.T) {
	var logs testenv.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	src := &fakeSource{name: "f", full: snapshot(
		person("f", "cn=a", "a@chat", "a@example.com", "shared@example.com"),
		person("f", "cn=b", "b@chat", "b@example.com", "shared@example.com"),
	)}
	d, _ := openFake(t, filepath.Join(t.TempDir(), "state.db"), log, src)
	for range 3 {
		if _, err := d.SyncFull(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), `msg="directory conflict" address=shared@example.com`); n != 1 {
		t.Errorf("conflict logged %d times, want once:\n%s", n, logs.String())
	}
	for _, want := range []string{"level=WARN", "resolution=\"unresolved: resolves to nothing\"", "f cn=a → a@chat", "f cn=b → b@chat"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if _, err := d.SetOverride(Override{Address: "shared@example.com", JID: "b@chat"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `address=shared@example.com resolution="decided by an override"`) {
		t.Errorf("decided conflict not logged:\n%s", logs.String())
	}
	// The override keeps the chosen person's directory facts.
	r := d.Resolve("shared@example.com")
	if r.Person == nil || r.Person.DN != "cn=b" || r.Person.MailboxID != "b@example.com" {
		t.Errorf("override-decided conflict resolves to %+v, want cn=b's facts", r.Person)
	}
}

// ResolveJID reads the current index: a sync and an override change show
// at once.
func TestDirectoryResolveJID(t *testing.T) {
	src := &fakeSource{name: "f", full: snapshot(person("f", "cn=alice", "alice@chat", "alice@example.com"))}
	d, _ := openFake(t, filepath.Join(t.TempDir(), "state.db"), quietLog(), src)
	if r := d.ResolveJID("alice@chat"); r.Status != StatusNotFound {
		t.Fatalf("before the first sync: %s", r.Status)
	}
	if _, err := d.SyncFull(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name   string
		change func() error
		jid    string
		status Status
		addr   string
	}{
		{"synced", nil, "Alice@Chat", StatusResolved, "alice@example.com"},
		{"override to another JID", func() error {
			_, err := d.SetOverride(Override{Address: "alice@example.com", JID: "a.smith@chat"})
			return err
		}, "alice@chat", StatusNotFound, ""},
		{"the new JID", nil, "a.smith@chat", StatusResolved, "alice@example.com"},
		{"override deleted", func() error { _, err := d.DeleteOverride("alice@example.com"); return err }, "alice@chat", StatusResolved, "alice@example.com"},
		{"old JID gone", nil, "a.smith@chat", StatusNotFound, ""},
	}
	for _, s := range steps {
		if s.change != nil {
			if err := s.change(); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
		}
		if r := d.ResolveJID(s.jid); r.Status != s.status || r.Address != s.addr {
			t.Errorf("%s: ResolveJID(%s) = %s %q, want %s %q", s.name, s.jid, r.Status, r.Address, s.status, s.addr)
		}
	}
}

// pausingOverrides is a store whose overrides reads can be held: a sync
// reads them after applying its sources and before rebuilding the index.
type pausingOverrides struct {
	*store.DB
	hold    chan struct{} // closed to release; nil never holds
	reached chan struct{}
}

func (p *pausingOverrides) ForEach(bucket string, fn func(string, []byte) error) error {
	if bucket == bucketOverrides && p.hold != nil {
		close(p.reached)
		<-p.hold
	}
	return p.DB.ForEach(bucket, fn)
}

// Health calls a source synced only once its people are in the index:
// readiness (and the calendar routes built from the index) must not see a
// synced directory that still resolves nobody.
func TestHealthWaitsForTheIndex(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ps := &pausingOverrides{DB: st}
	src := &fakeSource{name: "f", full: snapshot(person("f", "cn=bob", "bob@chat", "bob@example.com"))}
	d, err := New([]Source{src}, ps, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	ps.hold, ps.reached = make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		_, err := d.SyncFull(context.Background(), nil)
		done <- err
	}()
	<-ps.reached // bob applied, the index not yet rebuilt
	if h := d.Health(); !h[0].LastFull.IsZero() {
		t.Errorf("health says synced at %v while the index has nobody (resolve: %v)", h[0].LastFull, d.Resolve("bob@example.com").Status)
	}
	close(ps.hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if h := d.Health(); h[0].LastFull.IsZero() {
		t.Error("health says never synced after the sync")
	}
	checkResolve(t, d, []want{{query: "bob@example.com", status: StatusResolved, jid: "bob@chat"}})
}

// TestGenerationFollowsTheIndex: Generation moves with every new index
// (sync, override), and a resolution read after seeing it is the new
// index's (the web server keys its kept answers on it).
func TestGenerationFollowsTheIndex(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	src := &fakeSource{name: "f", full: snapshot(person("f", "cn=bob", "bob@chat", "bob@example.com"))}
	d, err := New([]Source{src}, st, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	g := d.Generation()
	if r := d.Resolve("bob@example.com"); r.Status == StatusResolved {
		t.Fatalf("bob resolved before any sync: %+v", r)
	}
	if _, err := d.SyncFull(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if d.Generation() == g {
		t.Error("a full sync left the generation")
	}
	checkResolve(t, d, []want{{query: "bob@example.com", status: StatusResolved, jid: "bob@chat"}})
	g = d.Generation()
	if _, err := d.SetOverride(Override{Address: "bob@example.com", JID: "robert@chat"}); err != nil {
		t.Fatal(err)
	}
	if d.Generation() == g {
		t.Error("an override left the generation")
	}
	checkResolve(t, d, []want{{query: "bob@example.com", status: StatusResolved, jid: "robert@chat"}})
}
