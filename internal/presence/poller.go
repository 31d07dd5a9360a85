package presence

import (
	"context"
	"math/rand/v2"
	"slices"
	"time"
)

// Run polls the source until ctx ends (register metrics before): schedules every PollInterval and
// automatic replies every AutoReplyInterval, each mailbox once per
// interval, in batches of the source's size spread evenly over the
// interval (with a little jitter), never in a burst. Boundaries inside
// the look-ahead are flipped by timers, so the interval only bounds how
// late a change to a calendar is noticed.
func (e *Engine) Run(ctx context.Context, src CalendarSource) {
	schedSize, replySize := src.BatchSizes()
	sem := make(chan struct{}, e.opts.Concurrency)
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.cycle(ctx, "autoreplies", e.opts.AutoReplyInterval, replySize, sem, nil, func(ctx context.Context, batch []string) error {
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
	e.cycle(ctx, "schedules", e.opts.PollInterval, schedSize, sem, reload, func(ctx context.Context, batch []string) error {
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
func (e *Engine) cycle(ctx context.Context, kind string, interval time.Duration, size int, sem chan struct{}, onCycle func(), fetch func(context.Context, []string) error) {
	for ctx.Err() == nil {
		if onCycle != nil {
			onCycle()
		}
		start := e.now()
		batches := e.batches(kind, size, start)
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

// batches splits the mailboxes due for a fetch into batches of size:
// every tracked mailbox except opted-out ones and those held back after
// failing alone.
func (e *Engine) batches(kind string, size int, now time.Time) [][]string {
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
	var out [][]string
	for len(ids) > 0 {
		n := min(size, len(ids))
		out = append(out, ids[:n:n])
		ids = ids[n:]
	}
	return out
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
	schedSize, replySize := src.BatchSizes()
	now := e.now()
	for start := 0; start < len(ids); start += schedSize {
		batch := ids[start:min(start+schedSize, len(ids))]
		facts, err := src.Schedules(ctx, batch, now.Add(-e.opts.LookBehind), now.Add(e.opts.LookAhead))
		if err != nil {
			return err
		}
		e.applySchedules(facts, now)
	}
	for start := 0; start < len(ids); start += replySize {
		batch := ids[start:min(start+replySize, len(ids))]
		facts, err := src.AutoReplies(ctx, batch)
		if err != nil {
			return err
		}
		e.applyAutoReplies(facts, now)
	}
	return nil
}
