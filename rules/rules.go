// Package rules turns what is known about a person — calendar facts, the
// out-of-office setting, live chat presence, the person's and the
// organisation's policy — into the presence the gateway shows and
// publishes, and the time that answer next changes.
//
// It is pure: no I/O and no clock. Time is a parameter, so every rule is
// a table test, and the caller (the engine) sets a timer for Output.Next
// to flip the state at the exact meeting boundary.
package rules

import (
	"slices"
	"strings"
	"time"
)

// State is a person's derived presence.
type State string

// The canonical states of the presence model.
const (
	Available State = "available"
	Away      State = "away"
	XA        State = "xa"  // extended away
	DND       State = "dnd" // do not disturb, set by the person
	Busy      State = "busy"
	OOF       State = "oof" // out of office
	Offline   State = "offline"
	Unknown   State = "unknown" // no mapping, or not allowed to know
)

// Source says which fact decided the state.
type Source string

// Sources of a derived state.
const (
	SourceXMPP     Source = "xmpp"     // live chat presence
	SourceCalendar Source = "calendar" // a meeting or out of office
	SourceManual   Source = "manual"   // a state the person set by hand
)

// ShowAs is how an event shows on the calendar (Graph's freeBusyStatus).
type ShowAs string

// Values of ShowAs.
const (
	ShowFree             ShowAs = "free"
	ShowTentative        ShowAs = "tentative"
	ShowBusy             ShowAs = "busy"
	ShowOOF              ShowAs = "oof"
	ShowWorkingElsewhere ShowAs = "workingElsewhere"
	ShowUnknown          ShowAs = "unknown"
)

// Event is one calendar item of a mailbox.
type Event struct {
	Start, End time.Time // any zone; compared as instants
	ShowAs     ShowAs
	AllDay     bool
	// Private is true for private and confidential events: their subject
	// and location are never shown, whatever the policy.
	Private   bool
	Cancelled bool
	// Subject and Location, when the source could read them.
	Subject, Location string
}

// AutoReplyStatus is the state of a mailbox's automatic replies.
type AutoReplyStatus string

// Values of AutoReplyStatus.
const (
	AutoReplyDisabled  AutoReplyStatus = "disabled"
	AutoReplyAlways    AutoReplyStatus = "alwaysEnabled"
	AutoReplyScheduled AutoReplyStatus = "scheduled"
)

// AutoReply is a mailbox's out-of-office setting.
type AutoReply struct {
	Status AutoReplyStatus
	// Start and End bound a scheduled reply.
	Start, End time.Time
	// Message is the internal reply as plain text (the source strips
	// HTML); its first line becomes the status text.
	Message string
}

// Calendar is what a calendar source knows about one mailbox.
type Calendar struct {
	Events    []Event
	AutoReply AutoReply
	// Location is the mailbox's time zone, for status texts ("until
	// 14:30" in the person's own time). Nil means UTC.
	Location *time.Location
	// Known is false when there are no facts at all (never fetched, or
	// expired after an outage): the calendar is then ignored.
	Known bool
}

// Show is an XMPP <show/> value; "" is plain available.
type Show string

// Values of Show (RFC 6121 §4.7.2.1).
const (
	ShowAvailable Show = ""
	ShowChat      Show = "chat"
	ShowAway      Show = "away"
	ShowXA        Show = "xa"
	ShowDND       Show = "dnd"
)

// Resource is the live presence of one of the person's chat clients.
type Resource struct {
	Name     string
	Show     Show
	Status   string
	Priority int
	// ByGateway is true when the gateway itself set this presence (its
	// calendar state echoed back); it is ignored, so it never counts as
	// the person's choice and what they had before comes back.
	ByGateway bool
}

// Chat is the person's live chat presence.
type Chat struct {
	// Known is false when no chat server is configured or the gateway
	// does not know the person's presence: the state then comes from the
	// calendar alone.
	Known bool
	// Resources are the online resources; none means offline.
	Resources []Resource
}

// Which calendar states are applied automatically.
type Automatic struct {
	Meetings bool
	OOF      bool
}

// Policy is the organisation's rules plus the person's own choice.
type Policy struct {
	// Automatic says which calendar states apply (organisation-wide).
	Automatic Automatic
	// OptOut is the person's choice to keep their chat presence free of
	// calendar states.
	OptOut bool
	// TentativeBusy counts tentative meetings as busy (else as free).
	TentativeBusy bool
	// AllDay decides all-day events: when false they are ignored (a
	// holiday marked busy does not make someone busy all day), except
	// out-of-office ones.
	AllDay bool
	// MergeGap merges meetings separated by at most this gap into one
	// "until"; zero merges only touching and overlapping ones.
	MergeGap time.Duration
	// ShowSubject lets the status text include a meeting's subject (never
	// for private events).
	ShowSubject bool
	// Texts are the status templates; the zero value uses DefaultTexts.
	Texts Texts
}

// DefaultPolicy is what an organisation gets without configuring rules:
// meetings and OOF automatic, tentative counts as busy, all-day events
// ignored unless out of office, touching meetings merged.
func DefaultPolicy() Policy {
	return Policy{Automatic: Automatic{Meetings: true, OOF: true}, TentativeBusy: true, Texts: defaultTexts}
}

// Output is the derived presence of one person at one time.
type Output struct {
	State  State
	Status string
	Source Source
	// Until is when the calendar state that decided the answer ends
	// (zero when open-ended or not from the calendar).
	Until time.Time
	// Next is the next time the answer may change on its own (a meeting
	// starts or ends, OOF begins or ends); zero when nothing is known.
	Next time.Time
	// Calendar is what the calendar says now, also when the chat state
	// wins (an offline person "in a meeting until 14:30").
	Calendar CalendarNow
}

// CalendarNow is the calendar's own answer at a time.
type CalendarNow struct {
	// State is Busy, OOF, or Available (free, working elsewhere); Unknown
	// when there are no facts or the person opted out.
	State State
	// Tentative marks a Busy from tentative meetings only.
	Tentative bool
	// WorkingElsewhere marks an Available from a working-elsewhere event.
	WorkingElsewhere bool
	Until            time.Time
	Status           string
	// Subject and Location of the current meeting, when policy allows.
	Subject, Location string
}

// Input is everything known about one person.
type Input struct {
	Calendar Calendar
	Chat     Chat
	Policy   Policy
}

// Derive computes a person's presence at now.
func Derive(in Input, now time.Time) Output {
	cal := calendarAt(in.Calendar, in.Policy, now)
	out := Output{Calendar: cal.now, Next: cal.next}
	if !in.Chat.Known {
		// No chat server: the calendar alone (free → available).
		out.Source = SourceCalendar
		switch cal.now.State {
		case Unknown:
			out.State = Unknown
		default:
			out.State, out.Status, out.Until = cal.now.State, cal.now.Status, cal.now.Until
		}
		return out
	}
	// The gateway's own presence (its calendar state echoed back) is not
	// the person's: what they had before is their other resources'.
	var own []Resource
	for _, r := range in.Chat.Resources {
		if !r.ByGateway {
			own = append(own, r)
		}
	}
	top, online := mainResource(own)
	switch {
	case !online:
		// Offline stays offline in chat; lookups still see the calendar.
		out.State, out.Source = Offline, SourceXMPP
		if cal.now.State == Busy || cal.now.State == OOF {
			out.Status, out.Until = cal.now.Status, cal.now.Until
		}
	case top.Show == ShowDND || top.Show == ShowAway || top.Show == ShowXA:
		// A state the person chose beats every calendar state.
		out.State, out.Status, out.Source = stateOfShow(top.Show), top.Status, SourceManual
	case cal.now.State == OOF || cal.now.State == Busy:
		out.State, out.Status, out.Until, out.Source = cal.now.State, cal.now.Status, cal.now.Until, SourceCalendar
	default:
		out.State, out.Status, out.Source = Available, top.Status, SourceXMPP
		if cal.now.WorkingElsewhere && out.Status == "" {
			out.Status, out.Source = cal.now.Status, SourceCalendar
		}
	}
	return out
}

// mainResource picks the resource whose presence stands for the person:
// the highest priority, then the most available show (RFC 6121 leaves
// the choice to the server; this is what most clients show).
func mainResource(rs []Resource) (Resource, bool) {
	if len(rs) == 0 {
		return Resource{}, false
	}
	best := rs[0]
	for _, r := range rs[1:] {
		if r.Priority > best.Priority || r.Priority == best.Priority && showRank(r.Show) < showRank(best.Show) {
			best = r
		}
	}
	return best, true
}

func showRank(s Show) int {
	switch s {
	case ShowChat:
		return 0
	case ShowAvailable:
		return 1
	case ShowAway:
		return 2
	case ShowXA:
		return 3
	default:
		return 4 // dnd
	}
}

func stateOfShow(s Show) State {
	switch s {
	case ShowAway:
		return Away
	case ShowXA:
		return XA
	case ShowDND:
		return DND
	}
	return Available
}

// calendarResult is the calendar's state at a time and the next boundary.
type calendarResult struct {
	now  CalendarNow
	next time.Time
}

// interval is a busy or out-of-office stretch after filtering and merging.
type interval struct {
	start, end time.Time
	kind       ShowAs // busy (meetings), oof, workingElsewhere
	tentative  bool   // only tentative meetings
	allDay     bool
	private    bool
	subject    string
	location   string
}

// calendarAt evaluates the calendar facts at now.
func calendarAt(c Calendar, p Policy, now time.Time) calendarResult {
	if !c.Known || p.OptOut || !p.Automatic.Meetings && !p.Automatic.OOF {
		return calendarResult{now: CalendarNow{State: Unknown}}
	}
	loc := c.Location
	if loc == nil {
		loc = time.UTC
	}
	texts := p.Texts.orDefault()
	var busy, oof, elsewhere []interval
	for _, e := range c.Events {
		if e.Cancelled || !e.End.After(e.Start) {
			continue
		}
		iv := interval{start: e.Start, end: e.End, allDay: e.AllDay, private: e.Private}
		if !e.Private && p.ShowSubject {
			iv.subject, iv.location = e.Subject, e.Location
		}
		switch e.ShowAs {
		case ShowOOF:
			if p.Automatic.OOF {
				iv.kind = ShowOOF
				oof = append(oof, iv)
			}
		case ShowBusy, ShowTentative:
			if !p.Automatic.Meetings || e.AllDay && !p.AllDay || e.ShowAs == ShowTentative && !p.TentativeBusy {
				continue
			}
			iv.kind, iv.tentative = ShowBusy, e.ShowAs == ShowTentative
			busy = append(busy, iv)
		case ShowWorkingElsewhere:
			if p.Automatic.Meetings && (!e.AllDay || p.AllDay) {
				iv.kind = ShowWorkingElsewhere
				elsewhere = append(elsewhere, iv)
			}
		}
	}
	if ar := c.AutoReply; p.Automatic.OOF {
		switch ar.Status {
		case AutoReplyAlways:
			// Open-ended: from the beginning of time to the end of time.
			oof = append(oof, interval{start: time.Time{}, end: farFuture, kind: ShowOOF})
		case AutoReplyScheduled:
			if ar.End.After(ar.Start) {
				oof = append(oof, interval{start: ar.Start, end: ar.End, kind: ShowOOF})
			}
		}
	}
	// The meetings as they are, for the subject of the one going on now.
	meetings := slices.Clone(busy)
	busy = merge(busy, p.MergeGap)
	oof = merge(oof, 0)
	elsewhere = merge(elsewhere, 0)

	res := calendarResult{now: CalendarNow{State: Available}}
	res.next = nextBoundary(now, busy, oof, elsewhere)
	if p.ShowSubject {
		// The subject changes at each meeting's own boundaries.
		res.next = earliest(res.next, nextBoundary(now, meetings))
	}
	switch {
	case covering(oof, now) != nil:
		iv := covering(oof, now)
		res.now.State = OOF
		if !iv.end.Equal(farFuture) {
			res.now.Until = iv.end
		}
		// The reply's text only while the reply is on: a reply scheduled
		// for next week or switched off says nothing about today.
		msg := ""
		if ar := c.AutoReply; ar.Status == AutoReplyAlways || ar.Status == AutoReplyScheduled && !now.Before(ar.Start) && now.Before(ar.End) {
			msg = firstLine(ar.Message)
		}
		res.now.Status = texts.oof(res.now.Until, msg, loc, now)
	case covering(busy, now) != nil:
		iv := *covering(busy, now)
		iv.subject, iv.location = subjectAt(meetings, now)
		res.now.State, res.now.Until, res.now.Tentative = Busy, iv.end, iv.tentative
		res.now.Subject, res.now.Location = iv.subject, iv.location
		res.now.Status = texts.meeting(&iv, loc, now)
	case covering(elsewhere, now) != nil:
		iv := covering(elsewhere, now)
		res.now.WorkingElsewhere, res.now.Until = true, iv.end
		res.now.Status = texts.elsewhere(iv.end, loc, now)
	}
	// An "until" on a later day reads differently after midnight ("until
	// Thu 00:30" becomes "until 00:30"): re-derive then.
	if u := res.now.Until; !u.IsZero() {
		n := now.In(loc)
		midnight := time.Date(n.Year(), n.Month(), n.Day()+1, 0, 0, 0, 0, loc)
		if u.After(midnight) {
			res.next = earliest(res.next, midnight)
		}
	}
	return res
}

// subjectAt is the subject and location of the meetings going on at t:
// none when one of them is private (a merged "until" must not show a
// public meeting's subject during a private one).
func subjectAt(meetings []interval, t time.Time) (string, string) {
	var subject, location string
	for _, m := range meetings {
		if t.Before(m.start) || !t.Before(m.end) {
			continue
		}
		if m.private {
			return "", ""
		}
		if subject == "" {
			subject, location = m.subject, m.location
		}
	}
	return subject, location
}

// earliest returns the earlier of two times, a zero one counting as none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// farFuture stands for "no end" (always-on automatic replies).
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// merge sorts intervals and joins those that overlap or are at most gap
// apart. A merged interval is tentative only if all its parts are, and
// keeps the subject of the first part.
func merge(ivs []interval, gap time.Duration) []interval {
	if len(ivs) < 2 {
		return ivs
	}
	slices.SortFunc(ivs, func(a, b interval) int { return a.start.Compare(b.start) })
	out := []interval{ivs[0]}
	for _, iv := range ivs[1:] {
		last := &out[len(out)-1]
		if !iv.start.After(last.end.Add(gap)) {
			if iv.end.After(last.end) {
				last.end = iv.end
			}
			last.tentative = last.tentative && iv.tentative
			last.allDay = last.allDay && iv.allDay
			continue
		}
		out = append(out, iv)
	}
	return out
}

// covering returns the interval that holds t (start inclusive, end
// exclusive), or nil.
func covering(ivs []interval, t time.Time) *interval {
	for i := range ivs {
		if !t.Before(ivs[i].start) && t.Before(ivs[i].end) {
			return &ivs[i]
		}
	}
	return nil
}

// nextBoundary is the earliest start or end after now of any interval.
func nextBoundary(now time.Time, lists ...[]interval) time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if t.After(now) && !t.Equal(farFuture) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, l := range lists {
		for _, iv := range l {
			consider(iv.start)
			consider(iv.end)
		}
	}
	return next
}

// firstLine returns the first non-empty line of s, trimmed and cut to 200
// characters (status messages are short).
func firstLine(s string) string {
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(line); line != "" {
			if r := []rune(line); len(r) > 200 {
				line = string(r[:199]) + "…"
			}
			return line
		}
	}
	return ""
}

// MailboxFacts is what a calendar source returns for one mailbox: the
// exchange format between the sources (Graph, EWS, ICS) and the engine,
// which turns it into a Calendar.
type MailboxFacts struct {
	Mailbox string
	// Events of the window asked for (schedules).
	Events []Event
	// Location is the mailbox's time zone when the source knows it.
	Location *time.Location
	// AutoReply is the out-of-office setting (auto-reply reads).
	AutoReply AutoReply
	// Err is set when this mailbox failed alone (not found, access
	// denied); the others of the same request are still good.
	Err error
}
