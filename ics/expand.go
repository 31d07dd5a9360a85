package ics

import (
	"slices"
	"time"

	"github.com/teambition/rrule-go"

	"github.com/presencegw/presencegw/rules"
)

// maxOccurrences bounds the occurrences of one series in one window, so a
// daily rule asked about a century cannot exhaust memory.
const maxOccurrences = 10000

// Events returns the events that overlap [start, end), recurring ones
// expanded, sorted by start. Recurrence follows RFC 5545: DTSTART is the
// first occurrence, RRULE (several are joined) and RDATE add occurrences,
// EXDATE removes them, an exception (RECURRENCE-ID) replaces the
// occurrence it names wherever it moved, and one with
// RANGE=THISANDFUTURE also shifts and restyles every later occurrence.
// Cancelled occurrences come back with Cancelled set and ShowAs free, so
// the rules ignore them.
func (c *Calendar) Events(start, end time.Time) []rules.Event {
	var out []rules.Event
	for _, s := range c.series {
		out = s.appendEvents(out, start, end)
	}
	slices.SortStableFunc(out, func(a, b rules.Event) int {
		if d := a.Start.Compare(b.Start); d != 0 {
			return d
		}
		return a.End.Compare(b.End)
	})
	return out
}

// prune drops the series that ended before t, so a cached calendar holds
// only what a window can still ask for.
func (c *Calendar) prune(t time.Time) {
	c.series = slices.DeleteFunc(c.series, func(s *series) bool {
		return !s.last.IsZero() && s.last.Before(t)
	})
}

func overlaps(s, e, start, end time.Time) bool {
	return s.Before(end) && e.After(start) || s.Equal(e) && !s.Before(start) && s.Before(end)
}

func (s *series) event(at, end time.Time) rules.Event {
	return rules.Event{Start: at, End: end, ShowAs: s.info.showAs, AllDay: s.allDay,
		Private: s.info.private, Cancelled: s.info.cancel, Subject: s.info.subject, Location: s.info.location}
}

func (s *series) appendEvents(out []rules.Event, start, end time.Time) []rules.Event {
	if !s.recurring() {
		if e := s.end(s.start); overlaps(s.start, e, start, end) {
			out = append(out, s.event(s.start, e))
		}
		for _, o := range s.overrides {
			if e := o.end(o.start); overlaps(o.start, e, start, end) {
				out = append(out, o.event(o.start, e))
			}
		}
		return out
	}
	// Originals that can land in the window: as long as the longest
	// occurrence before it, and as far as a THISANDFUTURE shift moves.
	lo, hi := start.Add(-s.maxLen()), end
	for _, f := range s.future {
		d := f.start.Sub(f.rid)
		lo = earlier(lo, start.Add(-f.maxLen()-max(d, 0)-time.Hour))
		hi = later(hi, end.Add(-min(d, 0)+time.Hour))
	}
	for _, t := range s.originals(lo, hi) {
		if s.over[t.Unix()] != nil || s.overDay != nil && s.overDay[t.Format("20060102")] != nil {
			continue // replaced by its exception, emitted below
		}
		inst, at := s, t
		if f := s.futureFor(t); f != nil {
			if f.rid.Equal(t) {
				continue // the exception itself, emitted below
			}
			inst, at = f, shift(t, f.rid, f.start)
		}
		if e := inst.end(at); overlaps(at, e, start, end) {
			out = append(out, inst.event(at, e))
		}
	}
	for _, rd := range s.rdates {
		if !rd.ownLength || s.exAt[rd.at.Unix()] {
			continue
		}
		if e := rd.at.AddDate(0, 0, rd.days).Add(rd.dur); overlaps(rd.at, e, start, end) && s.over[rd.at.Unix()] == nil {
			out = append(out, s.event(rd.at, e))
		}
	}
	for _, o := range s.overrides {
		if e := o.end(o.start); overlaps(o.start, e, start, end) {
			out = append(out, o.event(o.start, e))
		}
	}
	return out
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// futureFor is the last THISANDFUTURE exception at or before t.
func (s *series) futureFor(t time.Time) *series {
	var f *series
	for _, o := range s.future {
		if !o.rid.After(t) {
			f = o
		}
	}
	return f
}

// shift moves t as a THISANDFUTURE exception moved its own occurrence
// (from rid to start), in wall-clock time, so a meeting moved by an hour
// stays an hour later across a DST change.
func shift(t, rid, start time.Time) time.Time {
	loc := t.Location()
	wall := func(x time.Time) int64 {
		x = x.In(loc)
		_, off := x.Zone()
		return x.Unix() + int64(off)
	}
	d := wall(start) - wall(rid)
	w := time.Unix(wall(t)+d, 0).UTC()
	y, m, day := w.Date()
	h, mi, sec := w.Clock()
	return wallIn(y, m, day, h, mi, sec, loc)
}

// originals are the series' occurrences starting in [lo, hi), before
// exceptions: DTSTART, the rules' and the RDATEs' (periods apart), less
// EXDATEs.
func (s *series) originals(lo, hi time.Time) []time.Time {
	var ts []time.Time
	if !s.start.Before(lo) && s.start.Before(hi) {
		ts = append(ts, s.start)
	}
	for i := range s.rules {
		// The rule passed its check when parsed; should rrule-go still
		// fail, the rule's occurrences found so far stand.
		_ = guard(func() {
			next := s.rules[i].from(lo).Iterator()
			for n := 0; n < maxOccurrences; n++ {
				t, ok := next()
				if !ok || !t.Before(hi) {
					break
				}
				if !t.Before(lo) {
					// rrule-go makes occurrences with time.Date, which
					// reads a wall time that occurs twice as the second;
					// RFC 5545 wants the first.
					y, m, d := t.Date()
					h, mi, sec := t.Clock()
					ts = append(ts, wallIn(y, m, d, h, mi, sec, t.Location()))
				}
			}
		})
	}
	for _, rd := range s.rdates {
		if !rd.ownLength && !rd.at.Before(lo) && rd.at.Before(hi) {
			ts = append(ts, rd.at)
		}
	}
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	ts = slices.CompactFunc(ts, func(a, b time.Time) bool { return a.Equal(b) })
	return slices.DeleteFunc(ts, func(t time.Time) bool {
		return s.exAt[t.Unix()] || s.exDays != nil && s.exDays[t.Format("20060102")]
	})
}

// from is the rule, started as late before lo as gives the same
// occurrences from lo on. A rule without COUNT repeats every step (days
// for DAILY and WEEKLY, months for MONTHLY and YEARLY), so DTSTART moves
// forward by whole steps, keeping its time of day (wall-clock, across DST
// changes): a daily rule of 2015 then costs a few iterations, not 3,000.
// A monthly or yearly rule starts on the 1st of its month, with the day
// (and month) it took from DTSTART made explicit.
func (r *rule) from(lo time.Time) *rrule.RRule {
	if r.step == 0 {
		return r.r
	}
	start := r.opt.Dtstart
	y, m, d := start.Date()
	h, mi, sec := start.Clock()
	opt := r.moved
	if r.stepMonths {
		ly, lm, _ := lo.In(start.Location()).Date()
		months := (ly-y)*12 + int(lm-m) - r.step
		if months < 2*r.step {
			return r.r
		}
		k := months / r.step * r.step
		opt.Dtstart = time.Date(y, m+time.Month(k), 1, h, mi, sec, 0, start.Location())
	} else {
		days := civilDays(start, lo) - r.step
		if days < 2*r.step {
			return r.r
		}
		k := days / r.step * r.step
		opt.Dtstart = time.Date(y, m, d+k, h, mi, sec, 0, start.Location())
	}
	rr, err := rrule.NewRRule(opt)
	if err != nil {
		return r.r
	}
	return rr
}
