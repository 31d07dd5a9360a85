package presence

import (
	"time"

	"github.com/presencegw/presencegw/rules"
)

// nextSteps bounds how many boundaries Next looks past when one changes
// nothing anyone sees (the rules may name a boundary that, say, only
// ends a tentative meeting inside a busy one).
const nextSteps = 8

// Next is the next change of a mailbox's presence that the engine already
// knows from the facts it holds: when its boundary timer will flip the
// state, and what it will flip to (derived now, with today's chat
// presence and opt-out, as the timer would if nothing else changed). The
// XMPP component sends that state ahead of time so the server can apply
// it at the instant itself. ok is false for an untracked mailbox or when
// no change is foreseen (no facts, nothing ahead in the look-ahead).
func (e *Engine) Next(id string) (at time.Time, out rules.Output, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, tracked := e.mailboxes[key(id)]
	if !tracked {
		return time.Time{}, rules.Output{}, false
	}
	t := e.now()
	cur := e.derive(m, t)
	for range nextSteps {
		next := e.nextBoundary(m, cur, t)
		if next.IsZero() {
			return time.Time{}, rules.Output{}, false
		}
		o := e.derive(m, next)
		if !sameOutput(o, cur) {
			return next, o, true
		}
		t, cur = next, o
	}
	return time.Time{}, rules.Output{}, false
}

// nextBoundary is when m's answer out (derived at t) may change next: the
// rules' next boundary or the facts running out, as update arms its timer.
// The caller holds e.mu.
func (e *Engine) nextBoundary(m *mailbox, out rules.Output, t time.Time) time.Time {
	next := out.Next
	for _, x := range []time.Time{e.factsExpire(m), e.repliesExpire(m)} {
		if x.After(t) && !m.fetched.IsZero() && (next.IsZero() || x.Before(next)) {
			next = x
		}
	}
	if !next.After(t) {
		return time.Time{}
	}
	return next
}
