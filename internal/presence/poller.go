package presence

import (
	"cmp"
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Run polls the source until ctx ends (register metrics before): schedules every PollInterval and
// automatic replies every AutoReplyInterval, each mailbox once per
// interval, in batches of the source's size spread evenly over the
// interval (with a little jitter), never in a burst. Boundaries inside
// the look-ahead are flipped by timers, so the interval only bounds how
// late a change to a calendar is noticed.
func (e *Engine) Run(ctx context.Context, src CalendarSource) {
	sem := make(chan struct{}, e.opts.Concurrency)
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.cycle(ctx, "autoreplies", e.opts.AutoReplyInterval, src, sem, nil, func(ctx context.Context, batch []string) error {
			facts, err := src.AutoReplies(ctx, batch)
			if err == nil {
				e.applyAutoReplies(facts, e.now())
			}
			return err
		})
	}()
	// Once per cycle, opt-outs set from the CLI meanwhile are read.
	reload := func() {
		if err := e.reloadOptOuts(); err != nil {
			e.log.Warn("reading opt-outs", "err", err)
		}
	}
	e.cycle(ctx, "schedules", e.opts.PollInterval, src, sem, reload, func(ctx context.Context, batch []string) error {
		now := e.now()
		facts, err := src.Schedules(ctx, batch, now.Add(-e.opts.LookBehind), now.Add(e.opts.LookAhead))
		if err == nil {
			e.applySchedules(facts, now)
		}
		return err
	})
	<-done
}

// cycle runs fetch over every due mailbox once per interval, batch after
// batch at even steps. The first cycle starts at once, so a restart is
// answered from fresh facts within one interval.
func (e *Engine) cycle(ctx context.Context, kind string, interval time.Duration, src CalendarSource, sem chan struct{}, onCycle func(), fetch func(context.Context, []string) error) {
	for ctx.Err() == nil {
		if onCycle != nil {
			onCycle()
		}
		start := e.now()
		batches := e.batches(kind, src, start)
		if len(batches) == 0 {
			// Nothing tracked yet (the directory's first sync is still
			// running): look again soon instead of an interval later.
			if !sleepUntil(ctx, start.Add(min(interval, time.Second))) {
				return
			}
			continue
		}
		step := interval / time.Duration(max(len(batches), 1))
		var last time.Time
		for i, batch := range batches {
			due := start.Add(time.Duration(i) * step)
			// After a stall (a Graph pause, all slots busy) the overdue
			// batches go out half a step apart, not in a burst.
			if !last.IsZero() {
				due = later(due, last.Add(step/2))
			}
			// Jitter (a tenth of the step, at most a second) keeps
			// instances and restarts from lining up, without breaking the
			// spread or delaying the first read after a start.
			if j := min(step/10, time.Second); j > 0 {
				due = due.Add(rand.N(j))
			}
			if !sleepUntil(ctx, due) {
				return
			}
			if e.metrics != nil {
				e.metrics.lag.WithLabelValues(kind).Observe(max(e.now().Sub(due), 0).Seconds())
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			last = e.now()
			go func(batch []string) {
				defer func() { <-sem }()
				ctx, cancel := context.WithTimeout(ctx, interval)
				defer cancel()
				err := fetch(ctx, batch)
				if e.metrics != nil {
					result := "ok"
					if err != nil {
						result = "error"
					}
					e.metrics.polls.WithLabelValues(kind, result).Inc()
				}
				if err != nil && ctx.Err() == nil {
					// The facts stay until they expire; the next cycle
					// asks again.
					e.log.Warn("calendar poll failed", "kind", kind, "mailboxes", len(batch), "err", err)
				}
			}(batch)
		}
		e.observe()
		if !sleepUntil(ctx, start.Add(interval)) {
			return
		}
	}
}

// RoutedSource is a CalendarSource made of several, each serving some
// mailboxes with batch sizes of its own (a hybrid Exchange: EWS on
// premises, Graph online). The poller batches each route's mailboxes
// apart, so every source gets full batches of its own size, and spreads
// each route's batches evenly over the interval.
type RoutedSource interface {
	CalendarSource
	// Route names the source that serves a mailbox.
	Route(mailbox string) string
	// RouteBatchSizes is BatchSizes of the source Route named.
	RouteBatchSizes(route string) (schedules, autoReplies int)
}

// split cuts ids into the batches src takes for kind ("schedules" or
// "autoreplies"): by route for a RoutedSource, each route's batches
// interleaved with the others' in proportion.
func split(kind string, src CalendarSource, ids []string) [][]string {
	size := func(sched, replies int) int {
		if kind == "autoreplies" {
			return max(replies, 1)
		}
		return max(sched, 1)
	}
	rs, ok := src.(RoutedSource)
	if !ok {
		return slices.Collect(slices.Chunk(ids, size(src.BatchSizes())))
	}
	groups := map[string][]string{}
	for _, id := range ids {
		r := rs.Route(id)
		groups[r] = append(groups[r], id)
	}
	type placed struct {
		batch []string
		at    float64 // position in the cycle, 0 ≤ at < 1
		route string
	}
	var all []placed
	for r, g := range groups {
		bs := slices.Collect(slices.Chunk(g, size(rs.RouteBatchSizes(r))))
		for i, b := range bs {
			all = append(all, placed{b, (float64(i) + 0.5) / float64(len(bs)), r})
		}
	}
	slices.SortFunc(all, func(a, b placed) int {
		if a.at != b.at {
			return cmp.Compare(a.at, b.at)
		}
		return strings.Compare(a.route, b.route)
	})
	out := make([][]string, len(all))
	for i, p := range all {
		out[i] = p.batch
	}
	return out
}

// batches splits the mailboxes due for a fetch into the source's
// batches: every tracked mailbox except opted-out ones and those held
// back after failing alone.
func (e *Engine) batches(kind string, src CalendarSource, now time.Time) [][]string {
	e.mu.Lock()
	ids := make([]string, 0, len(e.mailboxes))
	for k, m := range e.mailboxes {
		held := m.errUntil
		if kind == "autoreplies" {
			held = m.replyErrUntil
		}
		// Opted-out people's calendars are never used: not read either.
		if !m.tracked || m.optOut || now.Before(held) {
			continue
		}
		ids = append(ids, k)
	}
	e.mu.Unlock()
	slices.Sort(ids)
	return split(kind, src, ids)
}

// observe updates the gauges: mailboxes tracked, stale (no successful
// read for two intervals) and failing.
func (e *Engine) observe() {
	if e.metrics == nil {
		return
	}
	now := e.now()
	e.mu.Lock()
	tracked, stale, failing := len(e.mailboxes), 0, 0
	for _, m := range e.mailboxes {
		if m.fetched.IsZero() || now.Sub(m.fetched) > 2*e.opts.PollInterval {
			stale++
		}
		if m.err != nil {
			failing++
		}
	}
	e.mu.Unlock()
	e.metrics.tracked.Set(float64(tracked))
	e.metrics.stale.Set(float64(stale))
	e.metrics.failing.Set(float64(failing))
}

// Stale reports whether a mailbox's calendar facts are older than two
// poll intervals (an outage): lookups can say so.
func (e *Engine) Stale(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, ok := e.mailboxes[key(id)]
	return !ok || m.fetched.IsZero() || e.now().Sub(m.fetched) > 2*e.opts.PollInterval
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Refresh reads the given mailboxes (all tracked ones when ids is empty)
// from the source now, once, and waits: for one-shot commands and for
// tests, where waiting for the poller's spread would be pointless.
func (e *Engine) Refresh(ctx context.Context, src CalendarSource, ids ...string) error {
	if len(ids) == 0 {
		ids = e.Mailboxes()
	} else {
		e.mu.Lock()
		for _, id := range ids {
			e.mailbox(id)
		}
		e.mu.Unlock()
	}
	now := e.now()
	for _, batch := range split("schedules", src, ids) {
		facts, err := src.Schedules(ctx, batch, now.Add(-e.opts.LookBehind), now.Add(e.opts.LookAhead))
		if err != nil {
			return err
		}
		e.applySchedules(facts, now)
	}
	for _, batch := range split("autoreplies", src, ids) {
		facts, err := src.AutoReplies(ctx, batch)
		if err != nil {
			return err
		}
		e.applyAutoReplies(facts, now)
	}
	return nil
}
