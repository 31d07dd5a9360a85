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

// Snapshot is the result of a full read: every person by DN.
type Snapshot struct {
	People map[string]*Person
	Cursor Cursor
	Stats  SyncStats
}

// Delta is the result of an incremental read.
type Delta struct {
	// Changed are new or modified people.
	Changed []*Person
	// Removed are DNs that no longer map (disabled, lost their address).
	Removed []string
	Cursor  Cursor
	Stats   SyncStats
}

// Store is what the directory keeps across restarts: the people of each
// source, cursors and overrides. internal/store implements it.
type Store interface {
	Get(bucket, key string) ([]byte, error)
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
// current index without locking; syncs are serialized.
type Directory struct {
	sources []Source
	store   Store
	log     *slog.Logger
	now     func() time.Time

	mu        sync.Mutex // serializes syncs and override changes
	people    map[string]map[string]*Person
	state     map[string]*sourceState
	overrides map[string]*Override
	index     atomic.Pointer[Index]
	// fullEvery makes an incremental sync read a source in full when its
	// last full read is older (set by Run; zero means never).
	fullEvery time.Duration
	// errors holds each source's last sync error (nil when it worked).
	errors map[string]error

	metrics *metrics
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
	d.rebuild()
	return d, nil
}

func (d *Directory) load() error {
	for _, s := range d.sources {
		name := s.Name()
		people := d.people[name]
		err := d.store.ForEach(bucketPeople+name, func(dn string, v []byte) error {
			p := &Person{}
			if err := json.Unmarshal(v, p); err != nil {
				return fmt.Errorf("directory snapshot %s %s: %w", name, dn, err)
			}
			people[dn] = p
			return nil
		})
		if err != nil {
			return err
		}
		if v, err := d.store.Get(bucketCursors, name); err == nil {
			if err := json.Unmarshal(v, d.state[name]); err != nil {
				return fmt.Errorf("directory cursor %s: %w", name, err)
			}
		}
	}
	_, err := d.loadOverrides()
	return err
}

// loadOverrides reads the overrides from the store and reports whether
// they differ from the ones in use.
func (d *Directory) loadOverrides() (bool, error) {
	ov := map[string]*Override{}
	err := d.store.ForEach(bucketOverrides, func(k string, v []byte) error {
		o := &Override{}
		if err := json.Unmarshal(v, o); err != nil {
			return fmt.Errorf("override %s: %w", k, err)
		}
		ov[k] = o
		return nil
	})
	if err != nil {
		return false, err
	}
	if reflect.DeepEqual(ov, d.overrides) {
		return false, nil
	}
	d.overrides = ov
	return true, nil
}

// rebuild makes a new index from the current people and overrides. The
// caller holds d.mu (or is New).
func (d *Directory) rebuild() {
	in := make([]sourcePeople, 0, len(d.sources))
	for _, s := range d.sources {
		in = append(in, sourcePeople{name: s.Name(), priority: s.Priority(), people: d.people[s.Name()]})
	}
	ix := buildIndex(in, d.overrides)
	d.index.Store(ix)
	if d.metrics != nil {
		d.metrics.observeIndex(ix)
	}
}

// Index returns the current index.
func (d *Directory) Index() *Index { return d.index.Load() }

// Resolve answers for one address from the current index.
func (d *Directory) Resolve(addr string) Resolution { return d.index.Load().Resolve(addr) }

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
	return d.sync(ctx, true, progress)
}

// SyncIncremental fetches what changed since each source's cursor; a source
// that cannot do that (first run, cursor from another server) gets a full
// read instead.
func (d *Directory) SyncIncremental(ctx context.Context) ([]SourceResult, error) {
	return d.sync(ctx, false, nil)
}

func (d *Directory) sync(ctx context.Context, full bool, progress func(Progress)) ([]SourceResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var results []SourceResult
	var errs []error
	changed := false
	for _, s := range d.sources {
		r, didChange, err := d.syncSource(ctx, s, full, progress)
		r.Err = err
		results = append(results, r)
		d.errors[s.Name()] = err
		if err != nil {
			errs = append(errs, err)
			d.log.Error("directory sync failed; keeping the last good entries", "source", s.Name(), "full", r.Full, "err", err)
		}
		changed = changed || didChange
	}
	// Overrides may have been changed by another process (the CLI).
	if ovChanged, err := d.loadOverrides(); err != nil {
		errs = append(errs, err)
	} else {
		changed = changed || ovChanged
	}
	if changed {
		d.rebuild()
	}
	if d.metrics != nil {
		d.metrics.observeSync(results)
	}
	return results, errors.Join(errs...)
}

func (d *Directory) syncSource(ctx context.Context, s Source, full bool, progress func(Progress)) (SourceResult, bool, error) {
	name := s.Name()
	st := d.state[name]
	start := d.now()
	if !full && d.fullEvery > 0 && (st.LastFull.IsZero() || start.Sub(st.LastFull) >= d.fullEvery) {
		full = true
	}
	r := SourceResult{Source: name, Full: full}
	if !full {
		delta, err := s.Changes(ctx, st.Cursor)
		switch {
		case errors.Is(err, ErrNeedFull):
			d.log.Info("incremental sync impossible, reading everything", "source", name, "reason", err)
			full, r.Full = true, true
		case err != nil:
			return r, false, err
		default:
			n, err := d.applyDelta(name, delta)
			r.Changed, r.Removed, r.Stats, r.Duration = n, len(delta.Removed), delta.Stats, time.Since(start)
			if err != nil {
				return r, false, err
			}
			st.Cursor, st.LastSync = delta.Cursor, d.now()
			if err := d.saveState(name); err != nil {
				return r, false, err
			}
			if n > 0 || len(delta.Removed) > 0 {
				d.log.Info("directory changes applied", "source", name, "changed", n, "removed", len(delta.Removed))
			}
			return r, n > 0 || len(delta.Removed) > 0, nil
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
	n, err := d.saveSnapshot(name, snap.People)
	if err != nil {
		return r, false, err
	}
	r.Removed = n
	d.people[name] = snap.People
	now := d.now()
	*st = sourceState{Cursor: snap.Cursor, LastFull: now, LastSync: now, Stats: snap.Stats}
	r.Stats, r.Changed, r.Duration = snap.Stats, len(snap.People), time.Since(start)
	if err := d.saveState(name); err != nil {
		return r, true, err
	}
	d.log.Info("directory full sync done", "source", name, "people", snap.Stats.People,
		"addresses", snap.Stats.Addresses, "skipped_disabled", snap.Stats.Disabled,
		"removed", r.Removed, "duration", r.Duration.Round(time.Millisecond))
	return r, true, nil
}

// applyDelta merges an incremental result into a source's people and the
// store; entries re-read without a real change are not counted, so an
// inclusive timestamp filter does not rebuild the index every minute.
func (d *Directory) applyDelta(name string, delta *Delta) (int, error) {
	people := d.people[name]
	puts := map[string][]byte{}
	var dels []string
	for _, p := range delta.Changed {
		v, err := json.Marshal(p)
		if err != nil {
			return 0, fmt.Errorf("directory %s: encode %s: %w", name, p.DN, err)
		}
		if old, ok := people[p.DN]; ok {
			if ov, _ := json.Marshal(old); bytes.Equal(ov, v) {
				continue
			}
		}
		puts[p.DN] = v
	}
	for _, dn := range delta.Removed {
		if _, ok := people[dn]; ok {
			dels = append(dels, dn)
		}
	}
	delta.Removed = dels
	if len(puts) == 0 && len(dels) == 0 {
		return 0, nil
	}
	if err := d.store.Write(bucketPeople+name, false, puts, dels); err != nil {
		return 0, err
	}
	for _, p := range delta.Changed {
		if _, ok := puts[p.DN]; ok {
			people[p.DN] = p
		}
	}
	for _, dn := range dels {
		delete(people, dn)
	}
	return len(puts), nil
}

// saveSnapshot brings the store's copy of a source up to a full read,
// writing only the entries that differ (a full sync of an unchanged
// directory writes nothing) in one transaction. It returns how many
// entries were removed.
func (d *Directory) saveSnapshot(name string, people map[string]*Person) (int, error) {
	old := d.people[name]
	puts := map[string][]byte{}
	var dels []string
	for dn, p := range people {
		v, err := json.Marshal(p)
		if err != nil {
			return 0, fmt.Errorf("directory %s: encode %s: %w", name, dn, err)
		}
		if o, ok := old[dn]; ok {
			if ov, _ := json.Marshal(o); bytes.Equal(ov, v) {
				continue
			}
		}
		puts[dn] = v
	}
	for dn := range old {
		if _, ok := people[dn]; !ok {
			dels = append(dels, dn)
		}
	}
	if len(puts) == 0 && len(dels) == 0 {
		return 0, nil
	}
	return len(dels), d.store.Write(bucketPeople+name, false, puts, dels)
}

func (d *Directory) saveState(name string) error {
	v, err := json.Marshal(d.state[name])
	if err != nil {
		return err
	}
	return d.store.Write(bucketCursors, false, map[string][]byte{name: v}, nil)
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
	Source   string    `json:"source"`
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
		h := Health{Source: s.Name(), LastFull: st.LastFull, LastSync: st.LastSync, People: len(d.people[s.Name()])}
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
	// MaxBackoff caps the wait after failures. Default 5 minutes.
	MaxBackoff time.Duration
}

// Run syncs until ctx ends: every incremental interval it fetches changes,
// and reads a source in full when its last full read is older than the
// full interval (at once on the first run). After a failure it retries with
// exponential backoff from one second up to MaxBackoff, so a directory that
// comes back is picked up quickly without hammering one that stays down.
func (d *Directory) Run(ctx context.Context, sch Schedule) {
	if sch.MaxBackoff == 0 {
		sch.MaxBackoff = 5 * time.Minute
	}
	d.mu.Lock()
	d.fullEvery = sch.Full
	d.mu.Unlock()
	backoff := time.Duration(0)
	for {
		_, err := d.SyncIncremental(ctx)
		wait := sch.Incremental
		if err != nil && ctx.Err() == nil {
			backoff = min(max(2*backoff, time.Second), sch.MaxBackoff)
			wait = backoff
			d.log.Warn("directory sync will be retried", "in", wait)
		} else {
			backoff = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
