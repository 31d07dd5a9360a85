package ldapmap

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Source is one directory the mapper reads people from.
type Source interface {
	// Name identifies the source in the store, logs and explanations.
	Name() string
	// Priority decides conflicts with other sources: higher wins.
	Priority() int
	// Full reads every person; progress, if not nil, is called now and
	// then with the number of entries read so far.
	Full(ctx context.Context, progress func(entries int)) (*Snapshot, error)
	// Changes returns what changed since the cursor of the last sync, or
	// ErrNeedFull when only a full read can tell.
	Changes(ctx context.Context, since Cursor) (*Delta, error)
}

// ErrNeedFull is returned by Source.Changes when the cursor cannot be used
// (first sync, another domain controller, a file replaced).
var ErrNeedFull = errors.New("incremental sync impossible, full sync needed")

// Cursor is where an incremental sync continues: the high-water mark of the
// change attribute and the server it was read from.
type Cursor struct {
	Mark   string `json:"mark,omitempty"`
	Server string `json:"server,omitempty"`
}

// SyncStats counts what a sync saw.
type SyncStats struct {
	People         int `json:"people"`
	Addresses      int `json:"addresses"`
	Disabled       int `json:"skipped_disabled"`
	NoMail         int `json:"skipped_no_mail"`
	OutsideDomains int `json:"skipped_outside_domains"`
	NoJID          int `json:"skipped_no_jid"`
}

// Snapshot is the result of a full read: every person by key (see
// Person.Key).
type Snapshot struct {
	People map[string]*Person
	Cursor Cursor
	Stats  SyncStats
}

// Delta is the result of an incremental read.
type Delta struct {
	// Changed are new or modified people.
	Changed []*Person
	// Removed are keys (see Person.Key) of entries that no longer map
	// (disabled, lost their address).
	Removed []string
	Cursor  Cursor
	Stats   SyncStats
}

// Store is what the directory keeps across restarts: the people of each
// source, cursors and overrides. internal/store implements it.
type Store interface {
	ForEach(bucket string, fn func(key string, value []byte) error) error
	Write(bucket string, reset bool, puts map[string][]byte, deletes []string) error
}

// Store buckets.
const (
	bucketOverrides = "overrides"
	bucketCursors   = "directory-cursors"
	bucketPeople    = "directory-people/" // + source name
)

// sourceState is the cursor record stored per source.
type sourceState struct {
	Cursor   Cursor    `json:"cursor"`
	LastFull time.Time `json:"last_full"`
	LastSync time.Time `json:"last_sync"`
	Stats    SyncStats `json:"stats"`
}

// Directory is the mapper: it syncs its sources, keeps their last good
// people, applies overrides, and publishes an Index. Lookups read the
// current index without locking. Syncs are serialized by syncMu and do
// their network and disk work without holding mu, so health checks and
// override changes never wait for a directory server.
type Directory struct {
	sources []Source
	store   Store
	log     *slog.Logger
	now     func() time.Time

	// syncMu serializes syncs: only a sync changes people and state, so
	// while holding it a sync may read them without mu.
	syncMu sync.Mutex
	// mu guards the fields below; it is never held across network I/O.
	mu     sync.Mutex
	people map[string]map[string]*Person // source → key → person
	state  map[string]*sourceState
	// indexed is each source's last full read that the current index
	// reflects: a sync applies a source's people before it rebuilds the
	// index, and Health must not call a source synced in between (the
	// index, and what is built from it, would still lack its people).
	indexed   map[string]time.Time
	overrides map[string]*Override
	// fullEvery makes an incremental sync read a source in full when its
	// last full read is older (set by Run; zero means never).
	fullEvery time.Duration
	// errors holds each source's last sync error (nil when it worked).
	errors  map[string]error
	metrics *metrics
	// onRebuild is told about every new index (the calendar poller tracks
	// its mailboxes).
	onRebuild func(*Index)

	index atomic.Pointer[Index]
	// generation counts the index swaps (Generation).
	generation atomic.Uint64
}

// New makes a Directory over the sources and loads what the store holds,
// so it answers from the last snapshot before the first sync finishes.
func New(sources []Source, st Store, log *slog.Logger) (*Directory, error) {
	d := &Directory{
		sources:   sources,
		store:     st,
		log:       log,
		now:       time.Now,
		people:    map[string]map[string]*Person{},
		state:     map[string]*sourceState{},
		indexed:   map[string]time.Time{},
		overrides: map[string]*Override{},
		errors:    map[string]error{},
	}
	seen := map[string]bool{}
	for _, s := range sources {
		if seen[s.Name()] {
			return nil, fmt.Errorf("directory: two sources are named %q", s.Name())
		}
		seen[s.Name()] = true
		d.people[s.Name()] = map[string]*Person{}
		d.state[s.Name()] = &sourceState{}
	}
	if err := d.load(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.rebuild()
	d.markIndexed()
	d.mu.Unlock()
	return d, nil
}

// markIndexed records that the index reflects every source's state. The
// caller holds mu and has just rebuilt the index, or found nothing to
// rebuild.
func (d *Directory) markIndexed() {
	for name, st := range d.state {
		d.indexed[name] = st.LastFull
	}
}

func (d *Directory) load() error {
	err := d.store.ForEach(bucketCursors, func(name string, v []byte) error {
		st, ok := d.state[name]
		if !ok {
			return nil // a source no longer configured
		}
		if err := json.Unmarshal(v, st); err != nil {
			return fmt.Errorf("directory cursor %s: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, s := range d.sources {
		name := s.Name()
		people := d.people[name]
		intern := interner{}
		err := d.store.ForEach(bucketPeople+name, func(key string, v []byte) error {
			p := &Person{}
			if err := json.Unmarshal(v, p); err != nil {
				return fmt.Errorf("directory snapshot %s %s: %w", name, key, err)
			}
			intern.person(p)
			people[key] = p
			return nil
		})
		if err != nil {
			return err
		}
	}
	ov, err := d.readOverrides()
	d.overrides = ov
	return err
}

// interner shares the strings every person of a source repeats, so a
// snapshot read back from the store takes no more memory than a sync.
type interner map[string]string

func (in interner) str(s string) string {
	if v, ok := in[s]; ok {
		return v
	}
	in[s] = s
	return s
}

func (in interner) person(p *Person) {
	p.Source, p.JIDFrom = in.str(p.Source), in.str(p.JIDFrom)
	if p.Route != nil {
		p.Route = internRoute(*p.Route)
	}
	for i := range p.Addresses {
		a := &p.Addresses[i]
		a.Attr = in.str(a.Attr)
		// Share the address with the raw value it is part of.
		if a.Raw != "" && strings.HasSuffix(a.Raw, a.Address) {
			a.Address = a.Raw[len(a.Raw)-len(a.Address):]
		}
	}
	if len(p.Addresses) > 0 && p.MailboxID == p.Addresses[0].Address {
		p.MailboxID = p.Addresses[0].Address
	}
}

// readOverrides reads every override from the store.
func (d *Directory) readOverrides() (map[string]*Override, error) {
	ov := map[string]*Override{}
	err := d.store.ForEach(bucketOverrides, func(k string, v []byte) error {
		o := &Override{}
		if err := json.Unmarshal(v, o); err != nil {
			return fmt.Errorf("override %s: %w", k, err)
		}
		ov[k] = o
		return nil
	})
	return ov, err
}

// rebuild makes a new index from the current people and overrides and
// logs the conflicts that appeared or changed since the last one. The
// caller holds d.mu.
func (d *Directory) rebuild() {
	in := make([]sourcePeople, 0, len(d.sources))
	for _, s := range d.sources {
		in = append(in, sourcePeople{name: s.Name(), priority: s.Priority(), people: d.people[s.Name()]})
	}
	ix := buildIndex(in, d.overrides)
	old := d.index.Swap(ix)
	d.generation.Add(1) // after the swap: whoever sees it, sees ix
	d.logConflicts(old, ix)
	if d.onRebuild != nil {
		d.onRebuild(ix)
	}
	if d.metrics != nil {
		d.metrics.observeIndex(ix)
	}
}

// logConflicts logs every conflict that is new or changed (claims or
// resolution) since the previous index, and those that went away, so an
// admin's log shows each one once, not at every sync.
func (d *Directory) logConflicts(old, ix *Index) {
	before := map[string]string{}
	if old != nil {
		for _, c := range old.Conflicts() {
			before[c.Address] = c.signature()
		}
	}
	for _, c := range ix.Conflicts() {
		sig := c.signature()
		if before[c.Address] == sig {
			delete(before, c.Address)
			continue
		}
		delete(before, c.Address)
		level, how := slog.LevelWarn, "unresolved: resolves to nothing"
		switch c.Resolution {
		case "priority":
			level, how = slog.LevelInfo, "decided by directory priority"
		case "override":
			level, how = slog.LevelInfo, "decided by an override"
		}
		claims := make([]string, len(c.Claims))
		for i, cl := range c.Claims {
			claims[i] = fmt.Sprintf("%s %s → %s", cl.Source, cl.DN, cmp.Or(cl.JID, cl.Problem))
		}
		d.log.Log(context.Background(), level, "directory conflict", "address", c.Address, "resolution", how, "claims", claims)
	}
	for addr := range before {
		d.log.Info("directory conflict gone", "address", addr)
	}
}

// OnRebuild registers fn to be called with every new index, and once now
// with the current one. fn runs with the directory locked: keep it short.
func (d *Directory) OnRebuild(fn func(*Index)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.onRebuild = fn
	fn(d.index.Load())
}

// Index returns the current index.
func (d *Directory) Index() *Index { return d.index.Load() }

// Generation changes whenever the index does (a sync, an override), so
// answers built from resolutions can be reused while it stays the same.
func (d *Directory) Generation() uint64 { return d.generation.Load() }

// Resolve answers for one address from the current index.
func (d *Directory) Resolve(addr string) Resolution { return d.index.Load().Resolve(addr) }

// ResolveJID answers for one bare JID from the current index.
func (d *Directory) ResolveJID(jid string) Resolution { return d.index.Load().ResolveJID(jid) }

// Conflicts lists the contested addresses of the current index.
func (d *Directory) Conflicts() []*Conflict { return d.index.Load().Conflicts() }

// Progress reports a running full sync.
type Progress struct {
	Source  string
	Entries int
	Elapsed time.Duration
}

// SourceResult is the outcome of syncing one source.
type SourceResult struct {
	Source   string        `json:"source"`
	Full     bool          `json:"full"`
	Stats    SyncStats     `json:"stats"`
	Changed  int           `json:"changed"`
	Removed  int           `json:"removed"`
	Duration time.Duration `json:"duration"`
	Err      error         `json:"-"`
}

// SyncFull re-reads every source. A source that fails keeps its last good
// people; the error names it, and the others are still updated.
func (d *Directory) SyncFull(ctx context.Context, progress func(Progress)) ([]SourceResult, error) {
	return d.sync(ctx, d.sources, true, progress)
}

// SyncIncremental fetches what changed since each source's cursor; a source
// that cannot do that (first run, cursor from another server) or whose
// full read is due gets a full read instead.
func (d *Directory) SyncIncremental(ctx context.Context) ([]SourceResult, error) {
	return d.sync(ctx, d.sources, false, nil)
}

func (d *Directory) sync(ctx context.Context, sources []Source, full bool, progress func(Progress)) ([]SourceResult, error) {
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	var results []SourceResult
	var errs []error
	changed := false
	for _, s := range sources {
		r, didChange, err := d.syncSource(ctx, s, full, progress)
		r.Err = err
		results = append(results, r)
		if err != nil {
			errs = append(errs, err)
			d.log.Error("directory sync failed; keeping the last good entries", "source", s.Name(), "full", r.Full, "err", err)
		}
		changed = changed || didChange
		d.mu.Lock()
		d.errors[s.Name()] = err
		d.mu.Unlock()
	}
	// Overrides may have been changed by another process (the CLI).
	ov, err := d.readOverrides()
	d.mu.Lock()
	if err != nil {
		errs = append(errs, err)
	} else if !reflect.DeepEqual(ov, d.overrides) {
		d.overrides = ov
		changed = true
	}
	if changed {
		d.rebuild()
	}
	d.markIndexed()
	if d.metrics != nil {
		d.metrics.observeSync(results)
	}
	d.mu.Unlock()
	return results, errors.Join(errs...)
}

// syncSource reads one source and applies what it read. The caller holds
// syncMu; d.mu is taken only to publish the result.
func (d *Directory) syncSource(ctx context.Context, s Source, full bool, progress func(Progress)) (SourceResult, bool, error) {
	name := s.Name()
	d.mu.Lock()
	st := *d.state[name]
	fullEvery := d.fullEvery
	d.mu.Unlock()
	start := d.now()
	if !full && fullEvery > 0 && (st.LastFull.IsZero() || start.Sub(st.LastFull) >= fullEvery) {
		full = true
	}
	r := SourceResult{Source: name, Full: full}
	if !full {
		delta, err := s.Changes(ctx, st.Cursor)
		switch {
		case errors.Is(err, ErrNeedFull):
			d.log.Info("incremental sync impossible, reading everything", "source", name, "reason", err)
			r.Full = true
		case err != nil:
			return r, false, err
		default:
			st.Cursor, st.LastSync = delta.Cursor, d.now()
			changed, removed, err := d.apply(name, delta.Changed, delta.Removed, false, st)
			r.Changed, r.Removed, r.Stats, r.Duration = changed, removed, delta.Stats, time.Since(start)
			if changed+removed > 0 {
				d.log.Info("directory changes applied", "source", name, "changed", changed, "removed", removed)
			}
			return r, changed+removed > 0, err
		}
	}
	var prog func(int)
	if progress != nil {
		prog = func(n int) { progress(Progress{Source: name, Entries: n, Elapsed: time.Since(start)}) }
	}
	snap, err := s.Full(ctx, prog)
	if err != nil {
		return r, false, err
	}
	now := d.now()
	st = sourceState{Cursor: snap.Cursor, LastFull: now, LastSync: now, Stats: snap.Stats}
	people := make([]*Person, 0, len(snap.People))
	for _, p := range snap.People {
		people = append(people, p)
	}
	changed, removed, err := d.apply(name, people, nil, true, st)
	r.Stats, r.Changed, r.Removed, r.Duration = snap.Stats, changed, removed, time.Since(start)
	if err == nil {
		d.log.Info("directory full sync done", "source", name, "people", snap.Stats.People,
			"addresses", snap.Stats.Addresses, "skipped_disabled", snap.Stats.Disabled,
			"changed", changed, "removed", removed, "duration", r.Duration.Round(time.Millisecond))
	}
	return r, changed+removed > 0, err
}

// apply brings a source's people to what a sync read, in the store first
// and then in memory, and saves the new state. With full, everyone not in
// people is removed; otherwise only the keys in removed are. A person
// whose JSON did not change is not written, so a full sync of an unchanged
// directory writes nothing and an inclusive timestamp filter re-reading
// the last changes does not count them. The caller holds syncMu.
func (d *Directory) apply(name string, people []*Person, removed []string, full bool, st sourceState) (int, int, error) {
	old := d.people[name]
	puts := map[string][]byte{}
	next := map[string]*Person{}
	for _, p := range people {
		key := p.Key()
		next[key] = p
		v, err := json.Marshal(p)
		if err != nil {
			return 0, 0, fmt.Errorf("directory %s: encode %s: %w", name, p.DN, err)
		}
		if o, ok := old[key]; ok {
			if ov, _ := json.Marshal(o); bytes.Equal(ov, v) {
				continue
			}
		}
		puts[key] = v
	}
	var dels []string
	if full {
		for key := range old {
			if _, ok := next[key]; !ok {
				dels = append(dels, key)
			}
		}
	} else {
		for _, key := range removed {
			// Read as changed in the same sync (re-enabled between the
			// two searches): the change wins, in memory and store alike.
			if _, ok := next[key]; !ok && old[key] != nil {
				dels = append(dels, key)
			}
		}
	}
	state, err := json.Marshal(st)
	if err != nil {
		return 0, 0, err
	}
	if len(puts)+len(dels) > 0 {
		if err := d.store.Write(bucketPeople+name, false, puts, dels); err != nil {
			return 0, 0, err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if full {
		d.people[name] = next
	} else {
		for key := range puts {
			old[key] = next[key]
		}
		for _, key := range dels {
			delete(old, key)
		}
	}
	// The people are in place even if the state cannot be saved: the
	// next sync then starts from the old cursor and re-reads them.
	if err := d.store.Write(bucketCursors, false, map[string][]byte{name: state}, nil); err != nil {
		return len(puts), len(dels), err
	}
	*d.state[name] = st
	return len(puts), len(dels), nil
}

// SetOverride stores an admin override and applies it at once. The address
// must be valid; a non-empty JID must be a bare JID.
func (d *Directory) SetOverride(o Override) (*Override, error) {
	addr, err := NormalizeAddress(o.Address)
	if err != nil {
		return nil, fmt.Errorf("override: %w", err)
	}
	o.Address = addr
	if o.JID != "" {
		if o.JID, err = normalizeJID(o.JID); err != nil {
			return nil, fmt.Errorf("override %s: %w", addr, err)
		}
	}
	if o.Created.IsZero() {
		o.Created = d.now().UTC()
	}
	v, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.store.Write(bucketOverrides, false, map[string][]byte{addr: v}, nil); err != nil {
		return nil, err
	}
	d.overrides[addr] = &o
	d.rebuild()
	return &o, nil
}

// DeleteOverride removes the override of an address, so the directories
// decide again. It reports whether there was one.
func (d *Directory) DeleteOverride(address string) (bool, error) {
	addr, err := NormalizeAddress(address)
	if err != nil {
		return false, fmt.Errorf("override: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.overrides[addr]; !ok {
		return false, nil
	}
	if err := d.store.Write(bucketOverrides, false, nil, []string{addr}); err != nil {
		return false, err
	}
	delete(d.overrides, addr)
	d.rebuild()
	return true, nil
}

// Overrides lists every override, sorted by address.
func (d *Directory) Overrides() []Override {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Override, 0, len(d.overrides))
	for _, o := range d.overrides {
		out = append(out, *o)
	}
	slices.SortFunc(out, func(a, b Override) int { return cmp.Compare(a.Address, b.Address) })
	return out
}

// Health is the sync state of one source, for /readyz and the admin.
type Health struct {
	Source string `json:"source"`
	// LastFull is the last full read the index reflects (zero until the
	// first one is in it).
	LastFull time.Time `json:"last_full"`
	LastSync time.Time `json:"last_sync"`
	People   int       `json:"people"`
	Error    string    `json:"error,omitempty"`
}

// Health reports every source's last sync.
func (d *Directory) Health() []Health {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Health
	for _, s := range d.sources {
		st := d.state[s.Name()]
		h := Health{Source: s.Name(), LastFull: d.indexed[s.Name()], LastSync: st.LastSync, People: len(d.people[s.Name()])}
		if err := d.errors[s.Name()]; err != nil {
			h.Error = err.Error()
		}
		out = append(out, h)
	}
	return out
}

// Schedule says how often Run syncs.
type Schedule struct {
	Incremental time.Duration
	Full        time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failure: it starts
	// at MinBackoff and doubles up to MaxBackoff. Defaults 1s and 5m.
	MinBackoff, MaxBackoff time.Duration
}

// Run syncs until ctx ends: every incremental interval it fetches changes,
// and reads a source in full when its last full read is older than the
// full interval (at once on the first run). A source that fails is retried
// with exponential backoff of its own, so a directory that comes back is
// picked up quickly, one that stays down is not hammered, and neither
// delays the healthy ones.
func (d *Directory) Run(ctx context.Context, sch Schedule) {
	sch.MinBackoff = cmp.Or(sch.MinBackoff, time.Second)
	sch.MaxBackoff = cmp.Or(sch.MaxBackoff, 5*time.Minute)
	d.mu.Lock()
	d.fullEvery = sch.Full
	d.mu.Unlock()
	type plan struct {
		next    time.Time
		backoff time.Duration
	}
	plans := map[string]*plan{}
	for _, s := range d.sources {
		plans[s.Name()] = &plan{next: d.now()}
	}
	for {
		var due []Source
		for _, s := range d.sources {
			if !d.now().Before(plans[s.Name()].next) {
				due = append(due, s)
			}
		}
		if len(due) > 0 {
			results, _ := d.sync(ctx, due, false, nil)
			for _, r := range results {
				p := plans[r.Source]
				if r.Err != nil && ctx.Err() == nil {
					p.backoff = min(max(2*p.backoff, sch.MinBackoff), sch.MaxBackoff)
					p.next = d.now().Add(p.backoff)
					d.log.Warn("directory sync will be retried", "source", r.Source, "in", p.backoff)
				} else {
					p.backoff = 0
					p.next = d.now().Add(sch.Incremental)
				}
			}
		}
		next := d.now().Add(sch.Incremental)
		for _, p := range plans {
			if p.next.Before(next) {
				next = p.next
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(max(time.Until(next), time.Millisecond)):
		}
	}
}
