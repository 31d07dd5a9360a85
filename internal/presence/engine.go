// Package presence is the hub of live state: for every tracked mailbox it
// holds the calendar facts, the live chat presence and the person's
// opt-out, asks package rules what that means now, flips the answer with
// a local timer at the exact boundary the rules name, and fans changes out
// to subscribers (the XMPP component, the web layer). A poller keeps the
// calendar facts fresh from a CalendarSource, cheaply: batched, spread
// over the poll interval, throttling-aware.
package presence

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/presencegw/presencegw/rules"
)

// CalendarSource is what the engine needs of a calendar backend;
// graph.Source, graph.EWS and ics.Source implement it, and cmd/presencegw
// routes between them per mailbox (see RoutedSource).
type CalendarSource interface {
	// BatchSizes says how many mailboxes one Schedules and one
	// AutoReplies call take.
	BatchSizes() (schedules, autoReplies int)
	// Schedules returns each mailbox's events in [start, end), one result
	// per mailbox; a mailbox that failed alone has Err set.
	Schedules(ctx context.Context, mailboxes []string, start, end time.Time) ([]rules.MailboxFacts, error)
	// AutoReplies returns each mailbox's out-of-office setting.
	AutoReplies(ctx context.Context, mailboxes []string) ([]rules.MailboxFacts, error)
}

// Store keeps the people's opt-outs across restarts (internal/store).
type Store interface {
	ForEach(bucket string, fn func(key string, value []byte) error) error
	Write(bucket string, reset bool, puts map[string][]byte, deletes []string) error
}

const bucketOptOut = "presence-optout"

// Change is one mailbox's presence changing.
type Change struct {
	Mailbox string
	Output  rules.Output
	// At is when the engine derived it.
	At time.Time
}

// Engine holds every tracked mailbox's state.
type Engine struct {
	policy rules.Policy
	opts   Options
	store  Store
	log    *slog.Logger
	now    func() time.Time

	mu        sync.Mutex
	mailboxes map[string]*mailbox
	subs      map[chan Change]struct{}
	metrics   *metrics
	// version counts the changes to what Lookup, Chat and Next answer (a
	// presence, a chat presence, facts that move what is ahead, a mailbox
	// added or dropped); bumped under mu, read without it.
	version atomic.Uint64
}

// mailbox is one tracked mailbox. Its fields are guarded by Engine.mu.
type mailbox struct {
	id        string
	events    []rules.Event
	loc       *time.Location
	autoReply rules.AutoReply
	// fetched and repliesFetched are the last successful reads.
	fetched, repliesFetched time.Time
	// errUntil and replyErrUntil hold back a mailbox whose schedule or
	// auto-reply read failed alone until then.
	errUntil, replyErrUntil time.Time
	err                     error
	// tracked is set for the directory's mailboxes, the only ones polled
	// (an opted-out person's entry stays, untracked, for the setting).
	tracked bool
	chat    rules.Chat
	optOut  bool
	out     rules.Output
	changed time.Time // when out last changed
	timer   *time.Timer
	// stamp is the engine's version at the mailbox's last change: its
	// presence, chat presence, or facts that move what is ahead
	// (ChangedSince).
	stamp uint64
}

// Options tune the engine and its poller.
type Options struct {
	// PollInterval bounds how late a calendar change is noticed. Default 5m.
	PollInterval time.Duration
	// AutoReplyInterval bounds how late an out-of-office change is
	// noticed. Default 15m.
	AutoReplyInterval time.Duration
	// LookAhead is how far ahead schedules are read, so boundaries are
	// known in advance; facts expire when it runs out. Default 8h.
	LookAhead time.Duration
	// LookBehind catches meetings already in progress. Default 1h.
	LookBehind time.Duration
	// MailboxRetry is how long a mailbox that failed alone (not found,
	// access denied) waits before it is asked again. Default 30m.
	MailboxRetry time.Duration
	// Concurrency bounds calls to the source in flight. Default 4.
	Concurrency int
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.PollInterval, 5*time.Minute)
	def(&o.AutoReplyInterval, 15*time.Minute)
	def(&o.LookAhead, 8*time.Hour)
	def(&o.LookBehind, time.Hour)
	def(&o.MailboxRetry, 30*time.Minute)
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
}

// New makes an engine; opt-outs are read from the store.
func New(policy rules.Policy, opts Options, st Store, log *slog.Logger) (*Engine, error) {
	opts.defaults()
	e := &Engine{policy: policy, opts: opts, store: st, log: log, now: time.Now,
		mailboxes: map[string]*mailbox{}, subs: map[chan Change]struct{}{}}
	return e, e.reloadOptOuts()
}

// reloadOptOuts reads the opt-outs from the store, so a change made by
// another process (the CLI) applies at the next poll cycle.
func (e *Engine) reloadOptOuts() error {
	set := map[string]bool{}
	err := e.store.ForEach(bucketOptOut, func(key string, _ []byte) error {
		set[key] = true
		return nil
	})
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for k := range set {
		e.mailbox(k)
	}
	for k, m := range e.mailboxes {
		if m.optOut != set[k] {
			m.optOut = set[k]
			e.update(m)
		}
	}
	return nil
}

func key(mailbox string) string { return strings.ToLower(strings.TrimSpace(mailbox)) }

// mailbox returns the state of id, creating it; the caller holds e.mu.
func (e *Engine) mailbox(id string) *mailbox {
	k := key(id)
	m, ok := e.mailboxes[k]
	if !ok {
		m = &mailbox{id: k}
		e.mailboxes[k] = m
		e.touch(m)
	}
	return m
}

// Track sets the mailboxes the poller keeps fresh (the directory's
// people); mailboxes no longer listed are dropped with their state.
func (e *Engine) Track(ids []string) {
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[key(id)] = true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, m := range e.mailboxes {
		if want[k] {
			continue
		}
		m.tracked = false
		if !m.optOut {
			if m.timer != nil {
				m.timer.Stop()
			}
			delete(e.mailboxes, k)
			e.version.Add(1)
		}
	}
	for k := range want {
		if m := e.mailbox(k); !m.tracked {
			m.tracked = true
			e.touch(m) // newly polled: readers of ChangedSince learn of it
		}
	}
}

// Get returns a mailbox's presence now, and whether it is tracked.
func (e *Engine) Get(id string) (rules.Output, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, ok := e.mailboxes[key(id)]
	if !ok {
		return rules.Output{State: rules.Unknown}, false
	}
	return e.derive(m, e.now()), true
}

// Lookup returns a mailbox's presence now, when it last changed, and
// whether its calendar facts are stale; ok is false for a mailbox the
// engine does not track.
func (e *Engine) Lookup(id string) (out rules.Output, changed time.Time, stale, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, ok := e.mailboxes[key(id)]
	if !ok {
		return rules.Output{State: rules.Unknown}, time.Time{}, false, false
	}
	now := e.now()
	stale = m.fetched.IsZero() || now.Sub(m.fetched) > 2*e.opts.PollInterval
	out = m.out
	if out.State == "" {
		// Never derived yet (no facts, no chat presence).
		out = e.derive(m, now)
	}
	// Kept current by the boundary timers: no derivation per lookup.
	return out, m.changed, stale, true
}

// derive computes m's presence at now; the caller holds e.mu.
func (e *Engine) derive(m *mailbox, now time.Time) rules.Output {
	p := e.policy
	p.OptOut = m.optOut
	return rules.Derive(rules.Input{Calendar: e.calendar(m, now), Chat: m.chat, Policy: p}, now)
}

// calendar is m's facts as the rules see them: unknown once they run out
// (an outage longer than the look-ahead).
func (e *Engine) calendar(m *mailbox, now time.Time) rules.Calendar {
	c := rules.Calendar{Events: m.events, Location: m.loc}
	c.Known = !m.fetched.IsZero() && now.Before(e.factsExpire(m))
	if now.Before(e.repliesExpire(m)) {
		c.AutoReply = m.autoReply
	}
	return c
}

// factsExpire is when m's schedule runs out: the end of the look-ahead
// read last (an outage longer than that leaves nothing to go by).
func (e *Engine) factsExpire(m *mailbox) time.Time { return m.fetched.Add(e.opts.LookAhead) }

// repliesExpire is when m's automatic-reply setting is too old to trust:
// three auto-reply intervals without a successful read.
func (e *Engine) repliesExpire(m *mailbox) time.Time {
	if m.repliesFetched.IsZero() {
		return time.Time{}
	}
	return m.repliesFetched.Add(3 * e.opts.AutoReplyInterval)
}

// SetChat records a mailbox's live chat presence (from the XMPP side).
func (e *Engine) SetChat(id string, chat rules.Chat) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.mailbox(id)
	m.chat = chat
	e.touch(m) // the chat part of a lookup, changed or not
	e.update(m)
}

// SetOptOut records a person's choice to keep calendar states out of
// their presence; it survives restarts.
func (e *Engine) SetOptOut(id string, optOut bool) error {
	k := key(id)
	var puts map[string][]byte
	var dels []string
	if optOut {
		puts = map[string][]byte{k: []byte("1")}
	} else {
		dels = []string{k}
	}
	if err := e.store.Write(bucketOptOut, false, puts, dels); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.mailbox(k)
	m.optOut = optOut
	e.update(m)
	return nil
}

// touch records a change of m; the caller holds e.mu.
func (e *Engine) touch(m *mailbox) { m.stamp = e.version.Add(1) }

// ChangedSince lists the tracked mailboxes changed after version (as
// Version returned it): a new presence or chat presence, or new facts that
// may move what Next foresees while the presence now stays (a meeting
// added, moved or cancelled ahead, which Subscribe does not report). It
// also returns the version to ask with next time. A change a subscriber
// had no room for shows here too, so a reader that keeps its version
// misses nothing, at the cost of a scan of stamps instead of re-deriving
// everyone.
func (e *Engine) ChangedSince(version uint64) (ids []string, now uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now = e.version.Load()
	if now == version {
		return nil, now
	}
	for _, m := range e.mailboxes {
		if m.tracked && m.stamp > version {
			ids = append(ids, m.id)
		}
	}
	return ids, now
}

// Version changes whenever an answer of Lookup or Chat may have changed,
// except for the stale flag, which turns with time alone: answers built
// from them can be reused while it stays the same. It is read without
// the engine's lock, so asking costs one atomic load.
func (e *Engine) Version() uint64 { return e.version.Load() }

// Chat is a mailbox's live chat presence as last recorded by SetChat.
func (e *Engine) Chat(id string) rules.Chat {
	e.mu.Lock()
	defer e.mu.Unlock()
	if m, ok := e.mailboxes[key(id)]; ok {
		return rules.Chat{Known: m.chat.Known, Resources: slices.Clone(m.chat.Resources)}
	}
	return rules.Chat{}
}

// OptedOut reports a person's opt-out.
func (e *Engine) OptedOut(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, ok := e.mailboxes[key(id)]
	return ok && m.optOut
}

// update re-derives m now, emits a change if the answer differs, and sets
// the timer for the next boundary. The caller holds e.mu.
func (e *Engine) update(m *mailbox) {
	now := e.now()
	out := e.derive(m, now)
	if !sameOutput(out, m.out) {
		m.out, m.changed = out, now
		e.touch(m)
		e.emit(Change{Mailbox: m.id, Output: out, At: now})
	} else {
		m.out.Next = out.Next
	}
	// Also re-derive when the facts expire, so subscribers learn it.
	next := out.Next
	for _, t := range []time.Time{e.factsExpire(m), e.repliesExpire(m)} {
		if t.After(now) && !m.fetched.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	e.arm(m, next, now)
}

// arm sets m's boundary timer: at the next change the rules named, the
// state flips without asking the calendar anything.
func (e *Engine) arm(m *mailbox, next, now time.Time) {
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
	if next.IsZero() {
		return
	}
	id := m.id
	m.timer = time.AfterFunc(max(next.Sub(now), 0), func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if cur, ok := e.mailboxes[id]; ok && cur == m {
			e.update(m)
		}
	})
}

// sameOutput ignores Next: only what people see counts as a change.
func sameOutput(a, b rules.Output) bool {
	ca, cb := a.Calendar, b.Calendar
	return a.State == b.State && a.Status == b.Status && a.Source == b.Source && a.Until.Equal(b.Until) &&
		ca.State == cb.State && ca.Tentative == cb.Tentative && ca.WorkingElsewhere == cb.WorkingElsewhere &&
		ca.Until.Equal(cb.Until) && ca.Status == cb.Status && ca.Subject == cb.Subject && ca.Location == cb.Location
}

// Subscribe returns a channel of changes and a function to stop. A
// subscriber that does not keep up loses changes (counted in metrics) and
// should re-read with Get; the engine never blocks on it.
func (e *Engine) Subscribe(buffer int) (<-chan Change, func()) {
	ch := make(chan Change, buffer)
	e.mu.Lock()
	e.subs[ch] = struct{}{}
	e.mu.Unlock()
	return ch, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if _, ok := e.subs[ch]; ok {
			delete(e.subs, ch)
			close(ch)
		}
	}
}

func (e *Engine) emit(c Change) {
	for ch := range e.subs {
		select {
		case ch <- c:
		default:
			if e.metrics != nil {
				e.metrics.dropped.Inc()
			}
		}
	}
	if e.metrics != nil {
		e.metrics.changes.WithLabelValues(string(c.Output.State)).Inc()
	}
}

// Mailboxes lists the tracked mailboxes, sorted.
func (e *Engine) Mailboxes() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, 0, len(e.mailboxes))
	for k := range e.mailboxes {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// applySchedules stores fetched schedules and re-derives those mailboxes.
func (e *Engine) applySchedules(facts []rules.MailboxFacts, at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, f := range facts {
		m, ok := e.mailboxes[key(f.Mailbox)]
		if !ok {
			continue
		}
		if f.Err != nil {
			m.err, m.errUntil = f.Err, at.Add(e.opts.MailboxRetry)
			e.log.Warn("calendar of a mailbox unavailable; retrying later", "mailbox", m.id, "err", f.Err, "retry_at", m.errUntil)
			continue
		}
		m.err, m.errUntil = nil, time.Time{}
		if !sameEvents(m.events, f.Events) || f.Location != nil && (m.loc == nil || m.loc.String() != f.Location.String()) {
			e.touch(m) // what is ahead may have moved
		}
		m.events = f.Events
		if f.Location != nil {
			m.loc = f.Location
		}
		m.fetched = at
		e.update(m)
	}
}

// applyAutoReplies stores fetched out-of-office settings.
func (e *Engine) applyAutoReplies(facts []rules.MailboxFacts, at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, f := range facts {
		m, ok := e.mailboxes[key(f.Mailbox)]
		if !ok {
			continue
		}
		if f.Err != nil {
			m.replyErrUntil = at.Add(e.opts.MailboxRetry)
			e.log.Warn("automatic replies of a mailbox unavailable; retrying later", "mailbox", m.id, "err", f.Err, "retry_at", m.replyErrUntil)
			continue
		}
		m.replyErrUntil = time.Time{}
		if !sameAutoReply(m.autoReply, f.AutoReply) {
			e.touch(m)
		}
		m.autoReply = f.AutoReply
		m.repliesFetched = at
		e.update(m)
	}
}

// sameEvents reports whether two reads of a calendar hold the same events,
// times compared as instants.
func sameEvents(a, b []rules.Event) bool {
	return slices.EqualFunc(a, b, func(x, y rules.Event) bool {
		return x.Start.Equal(y.Start) && x.End.Equal(y.End) && x.ShowAs == y.ShowAs && x.AllDay == y.AllDay &&
			x.Private == y.Private && x.Cancelled == y.Cancelled && x.Subject == y.Subject && x.Location == y.Location
	})
}

// sameAutoReply reports whether two reads of an out-of-office setting are
// the same, times compared as instants.
func sameAutoReply(a, b rules.AutoReply) bool {
	return a.Status == b.Status && a.Start.Equal(b.Start) && a.End.Equal(b.End) && a.Message == b.Message
}
