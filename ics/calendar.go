package ics

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-ical"
	"github.com/teambition/rrule-go"

	"github.com/presencegw/presencegw/rules"
)

// Options tune Parse.
type Options struct {
	// Location is the person's time zone: floating times and all-day
	// dates are read in it. Nil: the calendar's X-WR-TIMEZONE, else UTC.
	Location *time.Location
	// Owner is the calendar owner's mail address. When the owner is an
	// attendee of an event, their answer counts: declined shows free,
	// tentatively accepted shows tentative.
	Owner string
	// LoadZone resolves TZIDs that are neither IANA names nor defined by
	// a VTIMEZONE of the calendar (the gateway passes graph.LoadZone for
	// Windows names). Optional.
	LoadZone func(tzid string) (*time.Location, error)
}

// Calendar is a parsed feed: every VEVENT as a series (one event, or a
// recurrence with its exceptions), ready to expand into the events of any
// window. It holds no reference to the text it came from.
type Calendar struct {
	// Zone is the person's zone when known (Options.Location, else the
	// calendar's X-WR-TIMEZONE), else nil.
	Zone *time.Location
	// Floating is the zone floating times and dates are read in: Zone,
	// else UTC.
	Floating *time.Location
	// Problems are the events that were skipped (a time that does not
	// parse, an unknown zone, a recurrence rule that never occurs), each
	// naming its line and UID. The rest of the calendar stands.
	Problems []error
	// Series counts the recurring series, Single the other events.
	Series, Single int

	series []*series
}

// Parse reads an iCalendar feed. Malformed text is a *SyntaxError naming
// the line; events that cannot be read are skipped and listed in
// Problems.
func Parse(data []byte, opt Options) (*Calendar, error) {
	ic, lines, err := decodeLines(data, parseFilter{owner: strings.ToLower(strings.TrimSpace(opt.Owner))})
	if err != nil {
		return nil, err
	}
	return compile(ic, lines, opt)
}

// parseFilter keeps what compile reads: events and time zones, and of
// an event the properties below (ATTENDEE only on the owner's line).
type parseFilter struct{ owner string }

func (f parseFilter) component(name string) bool {
	switch name {
	case ical.CompEvent, ical.CompTimezone, ical.CompTimezoneStandard, ical.CompTimezoneDaylight:
		return true
	}
	return false
}

func (f parseFilter) property(comp, name, line string) bool {
	switch comp {
	case ical.CompCalendar:
		return name == "X-WR-TIMEZONE"
	case ical.CompEvent:
		switch name {
		case ical.PropDateTimeStart, ical.PropDateTimeEnd, ical.PropDuration, ical.PropRecurrenceRule,
			ical.PropRecurrenceDates, ical.PropExceptionDates, ical.PropRecurrenceID, ical.PropUID,
			ical.PropSequence, ical.PropStatus, ical.PropTransparency, ical.PropClass, ical.PropSummary,
			ical.PropLocation, "X-MICROSOFT-CDO-BUSYSTATUS", "X-MICROSOFT-CDO-INTENDEDSTATUS":
			return true
		case ical.PropOrganizer:
			return f.owner != ""
		case ical.PropAttendee:
			return f.owner != "" && containsFold(line, f.owner)
		}
		return false
	}
	return true // time zones: all
}

// containsFold reports whether s contains sub, ASCII case-insensitively.
func containsFold(s, sub string) bool {
	if sub == "" {
		return true
	}
	first := lower(sub[0])
	for i := 0; i+len(sub) <= len(s); i++ {
		if lower(s[i]) == first && strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// info is what an occurrence shows.
type info struct {
	showAs            rules.ShowAs
	private, cancel   bool
	subject, location string
}

// series is one VEVENT: a single event, a recurring master with its
// exceptions, or an exception whose master is not in the feed.
type series struct {
	uid  string
	line int
	info info
	// start is DTSTART; all-day starts are midnight in Calendar.Floating.
	start  time.Time
	allDay bool
	// An occurrence at t ends at t plus days (wall-clock) plus dur.
	days int
	dur  time.Duration
	seq  int

	// Recurrence (masters only).
	rules   []rule
	rdates  []rdate
	exAt    map[int64]bool  // EXDATE instants
	exDays  map[string]bool // EXDATE dates (YYYYMMDD) of a timed series
	over    map[int64]*series
	overDay map[string]*series // RECURRENCE-ID dates of a timed series
	future  []*series          // RANGE=THISANDFUTURE overrides by rid
	// overrides lists over, overDay and future for emitting.
	overrides []*series
	// last is when the last occurrence ends; zero when unbounded.
	last time.Time

	// Overrides only.
	rid       time.Time
	ridDate   bool // RECURRENCE-ID was a DATE
	ridFuture bool // RANGE=THISANDFUTURE
}

// rule is one RRULE, built for DTSTART.
type rule struct {
	opt rrule.ROption
	r   *rrule.RRule
	// step is the rule's period in days (DAILY, WEEKLY) or months
	// (MONTHLY, YEARLY) when it has no COUNT: expansion may then start
	// at any multiple of it after DTSTART and get the same occurrences,
	// instead of iterating from a DTSTART years ago (see rule.from).
	step       int
	stepMonths bool
	// moved is opt for such a later start: what the rule took from
	// DTSTART (the day of the month, the month) made explicit.
	moved rrule.ROption
}

// rdate is one RDATE: an extra occurrence, with its own length for a
// PERIOD.
type rdate struct {
	at        time.Time
	days      int
	dur       time.Duration
	ownLength bool
}

func (s *series) recurring() bool { return len(s.rules) > 0 || len(s.rdates) > 0 }

// end is when an occurrence of s starting at t ends.
func (s *series) end(t time.Time) time.Time {
	if s.days != 0 {
		t = t.AddDate(0, 0, s.days)
	}
	return t.Add(s.dur)
}

// maxLen bounds the length of any occurrence of s.
func (s *series) maxLen() time.Duration {
	return time.Duration(s.days)*25*time.Hour + s.dur
}

// problem is an event that was skipped.
type problem struct {
	line int
	uid  string
	err  error
}

func (p problem) Error() string {
	if p.uid != "" {
		return fmt.Sprintf("ics: line %d: event %s: %v", p.line, clip(p.uid), p.err)
	}
	return fmt.Sprintf("ics: line %d: event: %v", p.line, p.err)
}

func (p problem) Unwrap() error { return p.err }

// probeBudget bounds the time spent checking that recurrence rules occur
// at all, per calendar: rrule-go looks for the first occurrence of a rule
// that never matches (BYMONTH=2;BYMONTHDAY=30) up to year 9999, which
// takes up to a tenth of a second per rule.
const probeBudget = time.Second

// compiler turns a component tree into series.
type compiler struct {
	cal    *Calendar
	zones  *zones
	owner  string
	lines  map[*ical.Component]int
	probed time.Duration
}

func compile(ic *ical.Calendar, lines map[*ical.Component]int, opt Options) (*Calendar, error) {
	c := &compiler{cal: &Calendar{Zone: opt.Location}, zones: newZones(ic, opt.LoadZone),
		owner: strings.ToLower(strings.TrimSpace(opt.Owner)), lines: lines}
	if c.cal.Zone == nil {
		if p := ic.Props.Get("X-WR-TIMEZONE"); p != nil {
			if loc, err := c.zones.load(p.Value); err == nil {
				c.cal.Zone = loc
			}
		}
	}
	c.cal.Floating = c.cal.Zone
	if c.cal.Floating == nil {
		c.cal.Floating = time.UTC
	}
	masters := map[string]*series{}
	var overrides []*series
	for _, comp := range ic.Children {
		if comp.Name != ical.CompEvent {
			continue
		}
		s, err := c.event(comp)
		if err != nil {
			c.cal.Problems = append(c.cal.Problems, problem{line: lines[comp], uid: uidOf(comp), err: err})
			continue
		}
		if s.ridSet() {
			overrides = append(overrides, s)
			continue
		}
		c.cal.series = append(c.cal.series, s)
		if s.recurring() {
			c.cal.Series++
			if masters[s.uid] == nil && s.uid != "" {
				masters[s.uid] = s
			}
		} else {
			c.cal.Single++
		}
	}
	for _, o := range overrides {
		m := masters[o.uid]
		if m == nil || o.uid == "" {
			// An exception without its series (an invitation to one
			// occurrence): an event of its own.
			c.cal.series = append(c.cal.series, o)
			c.cal.Single++
			continue
		}
		m.attach(o)
	}
	for _, s := range c.cal.series {
		s.finish()
	}
	return c.cal, nil
}

func uidOf(comp *ical.Component) string {
	if p := comp.Props.Get(ical.PropUID); p != nil {
		return strings.TrimSpace(p.Value)
	}
	return ""
}

func (s *series) ridSet() bool { return !s.rid.IsZero() }

// attach adds an exception to its master; of two for the same occurrence
// the higher SEQUENCE wins.
func (m *series) attach(o *series) {
	if o.ridFuture {
		m.future = append(m.future, o)
		return
	}
	if o.ridDate && !m.allDay {
		if m.overDay == nil {
			m.overDay = map[string]*series{}
		}
		k := o.rid.Format("20060102")
		if old := m.overDay[k]; old == nil || o.seq >= old.seq {
			m.overDay[k] = o
		}
		return
	}
	if m.over == nil {
		m.over = map[int64]*series{}
	}
	k := o.rid.Unix()
	if old := m.over[k]; old == nil || o.seq >= old.seq {
		m.over[k] = o
	}
}

// finish sorts the exceptions and works out when the series ends.
func (s *series) finish() {
	slices.SortFunc(s.future, func(a, b *series) int { return a.rid.Compare(b.rid) })
	s.overrides = s.overrides[:0]
	for _, o := range s.over {
		s.overrides = append(s.overrides, o)
	}
	for _, o := range s.overDay {
		s.overrides = append(s.overrides, o)
	}
	s.overrides = append(s.overrides, s.future...)
	slices.SortFunc(s.overrides, func(a, b *series) int { return a.start.Compare(b.start) })

	last := s.end(s.start)
	if s.recurring() {
		last = time.Time{}
		bounded := len(s.rules) > 0
		for _, r := range s.rules {
			if r.opt.Until.IsZero() {
				bounded = false
			}
		}
		if bounded || len(s.rules) == 0 {
			for _, r := range s.rules {
				last = later(last, r.opt.Until.Add(s.maxLen()))
			}
			for _, rd := range s.rdates {
				last = later(last, rd.at.AddDate(0, 0, rd.days).Add(rd.dur+s.maxLen()))
			}
			last = later(last, s.end(s.start))
		}
		// COUNT rules end too, but where is only known by expanding:
		// they are kept.
	}
	if !last.IsZero() {
		for _, o := range s.overrides {
			last = later(last, o.end(o.start))
		}
	}
	s.last = last
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// event reads one VEVENT.
func (c *compiler) event(comp *ical.Component) (*series, error) {
	s := &series{uid: strings.Clone(uidOf(comp)), line: c.lines[comp]}
	p := comp.Props.Get(ical.PropDateTimeStart)
	if p == nil {
		return nil, fmt.Errorf("no DTSTART")
	}
	var err error
	if s.start, s.allDay, err = c.time(p, nil); err != nil {
		return nil, fmt.Errorf("DTSTART: %w", err)
	}
	switch {
	case comp.Props.Get(ical.PropDateTimeEnd) != nil:
		end, endDate, err := c.time(comp.Props.Get(ical.PropDateTimeEnd), s.start.Location())
		if err != nil {
			return nil, fmt.Errorf("DTEND: %w", err)
		}
		if s.allDay && endDate {
			s.days = max(civilDays(s.start, end), 1)
		} else if d := end.Sub(s.start); d > 0 {
			s.dur = d
		}
	case comp.Props.Get(ical.PropDuration) != nil:
		days, exact, err := parseDuration(strings.TrimSpace(comp.Props.Get(ical.PropDuration).Value))
		if err != nil {
			return nil, fmt.Errorf("DURATION: %w", err)
		}
		if days > 0 || days == 0 && exact > 0 {
			s.days, s.dur = days, exact
		}
		if s.allDay && s.days == 0 && s.dur == 0 {
			s.days = 1
		}
	case s.allDay:
		s.days = 1
	}
	if p := comp.Props.Get(ical.PropSequence); p != nil {
		s.seq = atoiOr(p.Value, 0)
	}
	s.info = c.info(comp)

	if p := comp.Props.Get(ical.PropRecurrenceID); p != nil {
		if s.rid, s.ridDate, err = c.time(p, s.start.Location()); err != nil {
			return nil, fmt.Errorf("RECURRENCE-ID: %w", err)
		}
		s.ridFuture = strings.EqualFold(p.Params.Get("RANGE"), "THISANDFUTURE")
		return s, nil // an exception has no recurrence of its own
	}
	for _, p := range comp.Props[ical.PropRecurrenceRule] {
		r, err := c.rule(s, p.Value)
		if err != nil {
			return nil, fmt.Errorf("RRULE %s: %w", clip(p.Value), err)
		}
		if r != nil {
			s.rules = append(s.rules, *r)
		}
	}
	for _, p := range comp.Props[ical.PropRecurrenceDates] {
		if err := c.rdates(s, p); err != nil {
			return nil, fmt.Errorf("RDATE: %w", err)
		}
	}
	for _, p := range comp.Props[ical.PropExceptionDates] {
		for v := range strings.SplitSeq(p.Value, ",") {
			t, date, err := c.timeValue(strings.TrimSpace(v), p.Params, s.start.Location())
			if err != nil {
				return nil, fmt.Errorf("EXDATE: %w", err)
			}
			if date && !s.allDay {
				if s.exDays == nil {
					s.exDays = map[string]bool{}
				}
				s.exDays[t.Format("20060102")] = true
				continue
			}
			if s.exAt == nil {
				s.exAt = map[int64]bool{}
			}
			s.exAt[t.Unix()] = true
		}
	}
	return s, nil
}

// rule builds one RRULE for the series, and checks that it occurs.
func (c *compiler) rule(s *series, value string) (*rule, error) {
	opt, untilText, err := parseRule(value)
	if err != nil {
		return nil, err
	}
	switch opt.Freq {
	case rrule.HOURLY, rrule.MINUTELY, rrule.SECONDLY:
		// rrule-go can loop forever on some sub-daily rules (BYHOUR that
		// the INTERVAL never reaches); calendars do not need them.
		return nil, fmt.Errorf("FREQ=%s is not supported (sub-daily)", opt.Freq)
	}
	loc := s.start.Location()
	if untilText != "" {
		u, date, err := c.timeValue(untilText, nil, loc)
		if err != nil {
			return nil, fmt.Errorf("UNTIL: %w", err)
		}
		if date && !s.allDay {
			// A DATE UNTIL on a timed series: through the end of that day.
			u = u.AddDate(0, 0, 1).Add(-time.Second)
		}
		opt.Until = u
	}
	opt.Dtstart = s.start
	var r *rrule.RRule
	if perr := guard(func() { r, err = rrule.NewRRule(*opt) }); perr != nil {
		return nil, perr
	}
	if err != nil {
		return nil, err
	}
	out := &rule{opt: *opt, r: r, moved: *opt}
	if opt.Count == 0 && len(opt.Bysetpos) == 0 {
		n := max(opt.Interval, 1)
		noBy := len(opt.Byweekno) == 0 && len(opt.Byyearday) == 0 && len(opt.Bymonthday) == 0 &&
			len(opt.Byweekday) == 0 && len(opt.Byeaster) == 0
		switch opt.Freq {
		case rrule.DAILY:
			out.step = n
		case rrule.WEEKLY:
			out.step = 7 * n
		case rrule.MONTHLY:
			out.step, out.stepMonths = n, true
			if noBy {
				out.moved.Bymonthday = []int{s.start.Day()}
			}
		case rrule.YEARLY:
			out.step, out.stepMonths = 12*n, true
			if noBy {
				out.moved.Bymonthday = []int{s.start.Day()}
				if len(opt.Bymonth) == 0 {
					out.moved.Bymonth = []int{int(s.start.Month())}
				}
			}
		}
	}
	if c.probed > probeBudget {
		return nil, fmt.Errorf("not checked: the calendar's recurrence checks took over %s", probeBudget)
	}
	t0 := time.Now()
	var first time.Time
	perr := guard(func() { first = r.After(s.start, true) })
	c.probed += time.Since(t0)
	if perr != nil {
		return nil, perr
	}
	if first.IsZero() {
		return nil, nil // never occurs (or not after UNTIL): no rule
	}
	return out, nil
}

// rdates reads one RDATE property: dates, date-times or periods.
func (c *compiler) rdates(s *series, p ical.Prop) error {
	for v := range strings.SplitSeq(p.Value, ",") {
		v = strings.TrimSpace(v)
		startText, endText, period := strings.Cut(v, "/")
		t, _, err := c.timeValue(startText, p.Params, s.start.Location())
		if err != nil {
			return err
		}
		rd := rdate{at: t}
		if period {
			if strings.HasPrefix(endText, "P") || strings.HasPrefix(endText, "+P") {
				if rd.days, rd.dur, err = parseDuration(endText); err != nil {
					return err
				}
			} else {
				end, _, err := c.timeValue(endText, p.Params, s.start.Location())
				if err != nil {
					return err
				}
				rd.dur = max(end.Sub(t), 0)
			}
			rd.ownLength = true
		}
		s.rdates = append(s.rdates, rd)
	}
	return nil
}

// time reads a DATE or DATE-TIME property. def is the zone of a floating
// time when it is not Calendar.Floating (RECURRENCE-ID, EXDATE and DTEND
// follow DTSTART).
func (c *compiler) time(p *ical.Prop, def *time.Location) (time.Time, bool, error) {
	if strings.Contains(p.Value, ",") {
		return time.Time{}, false, fmt.Errorf("%s: one value expected", clip(p.Value))
	}
	return c.timeValue(strings.TrimSpace(p.Value), p.Params, def)
}

// timeValue reads one DATE or DATE-TIME value with the property's
// parameters (TZID, VALUE). A DATE is midnight in Calendar.Floating.
func (c *compiler) timeValue(v string, params ical.Params, def *time.Location) (time.Time, bool, error) {
	if def == nil {
		def = c.cal.Floating
	}
	if len(v) == 8 || strings.EqualFold(params.Get(ical.ParamValue), "DATE") {
		y, m, d, ok := parseDate(v)
		if !ok {
			return time.Time{}, false, fmt.Errorf("%s is not a date (YYYYMMDD)", clip(v))
		}
		return wallIn(y, time.Month(m), d, 0, 0, 0, c.cal.Floating), true, nil
	}
	if n := len(v); n > 0 && (v[n-1] == 'Z' || v[n-1] == 'z') {
		t, err := localTime(v[:n-1], time.UTC)
		return t, false, err
	}
	loc := def
	if tzid := params.Get(ical.PropTimezoneID); tzid != "" {
		l, err := c.zones.load(tzid)
		if err != nil {
			return time.Time{}, false, err
		}
		loc = l
	}
	t, err := localTime(v, loc)
	return t, false, err
}

// civilDays counts calendar days from a to b (dates in a's zone).
func civilDays(a, b time.Time) int {
	b = b.In(a.Location())
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	da := time.Date(ay, am, ad, 12, 0, 0, 0, time.UTC)
	db := time.Date(by, bm, bd, 12, 0, 0, 0, time.UTC)
	return int(db.Sub(da).Hours() / 24)
}

// info reads how an event shows: RFC 5545's TRANSP and STATUS, then
// Outlook's X-MICROSOFT-CDO-BUSYSTATUS (or -INTENDEDSTATUS) where present,
// then the owner's own answer to an invitation; CLASS for privacy.
func (c *compiler) info(comp *ical.Component) info {
	get := func(name string) string {
		if p := comp.Props.Get(name); p != nil {
			return strings.ToUpper(strings.TrimSpace(p.Value))
		}
		return ""
	}
	in := info{showAs: rules.ShowBusy}
	status := get(ical.PropStatus)
	switch {
	case get(ical.PropTransparency) == "TRANSPARENT":
		in.showAs = rules.ShowFree
	case status == "TENTATIVE":
		in.showAs = rules.ShowTentative
	}
	cdo := get("X-MICROSOFT-CDO-BUSYSTATUS")
	if cdo == "" {
		cdo = get("X-MICROSOFT-CDO-INTENDEDSTATUS")
	}
	switch cdo {
	case "FREE":
		in.showAs = rules.ShowFree
	case "TENTATIVE":
		in.showAs = rules.ShowTentative
	case "BUSY":
		in.showAs = rules.ShowBusy
	case "OOF":
		in.showAs = rules.ShowOOF
	case "WORKINGELSEWHERE":
		in.showAs = rules.ShowWorkingElsewhere
	}
	switch c.partstat(comp) {
	case "DECLINED":
		in.showAs = rules.ShowFree
	case "TENTATIVE":
		if in.showAs == rules.ShowBusy {
			in.showAs = rules.ShowTentative
		}
	}
	if status == "CANCELLED" {
		in.cancel, in.showAs = true, rules.ShowFree
	}
	switch get(ical.PropClass) {
	case "PRIVATE", "CONFIDENTIAL":
		in.private = true
	}
	if !in.private {
		in.subject = text(comp, ical.PropSummary)
		in.location = text(comp, ical.PropLocation)
	}
	return in
}

// partstat is the owner's answer when they are an attendee and not the
// organizer.
func (c *compiler) partstat(comp *ical.Component) string {
	if c.owner == "" {
		return ""
	}
	if p := comp.Props.Get(ical.PropOrganizer); p != nil && address(*p) == c.owner {
		return ""
	}
	for _, p := range comp.Props[ical.PropAttendee] {
		if address(p) == c.owner {
			return strings.ToUpper(p.Params.Get(ical.ParamParticipationStatus))
		}
	}
	return ""
}

// address is the mail address of an ATTENDEE or ORGANIZER: its mailto:
// value, or its EMAIL parameter (Apple writes urn:uuid: values).
func address(p ical.Prop) string {
	v := strings.TrimSpace(p.Value)
	if len(v) > 7 && strings.EqualFold(v[:7], "mailto:") {
		return strings.ToLower(v[7:])
	}
	return strings.ToLower(strings.TrimSpace(p.Params.Get("EMAIL")))
}

// text reads a TEXT property, unescaped, detached from the feed's text.
func text(comp *ical.Component, name string) string {
	p := comp.Props.Get(name)
	if p == nil {
		return ""
	}
	t, err := p.Text()
	if err != nil {
		return ""
	}
	return strings.Clone(strings.TrimSpace(t))
}
