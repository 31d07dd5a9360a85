package ics

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-ical"
	"github.com/teambition/rrule-go"
)

// Time zones. A DATE-TIME with a TZID is resolved, in order:
//
//  1. as an IANA name ("Europe/Berlin": Google, Nextcloud, Fastmail,
//     Apple), through time.LoadLocation;
//  2. as a path ending in an IANA name ("/mozilla.org/20050126_1/Europe/Berlin",
//     "/softwarestudio.org/Olson_20011030_5/America/New_York": old
//     Thunderbird and libical exports);
//  3. through Config.LoadZone when set (the gateway passes the Windows
//     zone table of the graph package, which this package must not
//     import: it would link the Graph SDK);
//  4. through the calendar's own VTIMEZONE with that TZID: its
//     X-LIC-LOCATION when that is an IANA name, else a location built
//     from its STANDARD and DAYLIGHT observances (offsets, RRULE, RDATE).
//     This is how Outlook's and Exchange's Windows names ("W. Europe
//     Standard Time") and custom zones resolve without a table.
//
// A TZID none of these resolves is a problem of the events that use it
// (they are skipped and reported); the rest of the calendar stands.

// zoneHorizon is the last year for which transitions are built from a
// VTIMEZONE; later times keep the offset of the last transition.
const zoneHorizon = 2100

// zoneFloor is the first year for which transitions are built: earlier
// instants keep the offset in force before the first one.
const zoneFloor = 1970

var (
	ianaCache   sync.Map // name → *time.Location, successful loads only
	builtZones  sync.Map // VTIMEZONE fingerprint → *time.Location
	builtCount  int
	builtMu     sync.Mutex
	maxBuiltZon = 1000 // bound on builtZones: feeds could invent endless zones
)

// loadIANA loads an IANA zone name, cached. "Local" and "" are refused:
// they would mean the gateway's zone, not the calendar's.
func loadIANA(name string) (*time.Location, error) {
	if name == "" || name == "Local" || len(name) > 64 {
		return nil, fmt.Errorf("not an IANA zone name: %q", name)
	}
	if loc, ok := ianaCache.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	ianaCache.Store(name, loc)
	return loc, nil
}

// zones resolves the TZIDs of one calendar.
type zones struct {
	defs  map[string]*ical.Component // VTIMEZONE by TZID
	memo  map[string]zoneResult
	extra func(string) (*time.Location, error)
	// spent is the time spent building zones from VTIMEZONEs: a feed of
	// many invented zones with rules that never occur must not take long.
	spent time.Duration
}

type zoneResult struct {
	loc *time.Location
	err error
}

func newZones(cal *ical.Calendar, extra func(string) (*time.Location, error)) *zones {
	z := &zones{defs: map[string]*ical.Component{}, memo: map[string]zoneResult{}, extra: extra}
	for _, c := range cal.Children {
		if c.Name != ical.CompTimezone {
			continue
		}
		if p := c.Props.Get(ical.PropTimezoneID); p != nil {
			if id := strings.TrimSpace(p.Value); id != "" {
				if _, dup := z.defs[id]; !dup {
					z.defs[id] = c
				}
			}
		}
	}
	return z
}

// load resolves a TZID.
func (z *zones) load(tzid string) (*time.Location, error) {
	if r, ok := z.memo[tzid]; ok {
		return r.loc, r.err
	}
	loc, err := z.resolve(strings.TrimSpace(tzid))
	z.memo[tzid] = zoneResult{loc, err}
	return loc, err
}

func (z *zones) resolve(tzid string) (*time.Location, error) {
	if tzid == "" {
		return nil, errors.New("empty TZID")
	}
	if loc, err := loadIANA(tzid); err == nil {
		return loc, nil
	}
	if strings.Count(tzid, "/") >= 2 {
		parts := strings.Split(strings.Trim(tzid, "/"), "/")
		for n := 3; n >= 2; n-- {
			if len(parts) > n {
				if loc, err := loadIANA(strings.Join(parts[len(parts)-n:], "/")); err == nil {
					return loc, nil
				}
			}
		}
	}
	if z.extra != nil {
		if loc, err := z.extra(tzid); err == nil && loc != nil {
			return loc, nil
		}
	}
	def, ok := z.defs[tzid]
	if !ok {
		return nil, fmt.Errorf("time zone %q: not an IANA name and the calendar has no VTIMEZONE for it", tzid)
	}
	if p := def.Props.Get("X-LIC-LOCATION"); p != nil {
		if loc, err := loadIANA(strings.TrimSpace(p.Value)); err == nil {
			return loc, nil
		}
	}
	if z.spent > probeBudget {
		return nil, fmt.Errorf("time zone %q: not built, the calendar's VTIMEZONEs took over %s", tzid, probeBudget)
	}
	t0 := time.Now()
	defer func() { z.spent += time.Since(t0) }()
	return buildZone(tzid, def)
}

// fingerprint identifies a VTIMEZONE by its content, so the zone is built
// once however many calendars carry it.
func fingerprint(tzid string, def *ical.Component) string {
	var b strings.Builder
	b.WriteString(tzid)
	for _, obs := range def.Children {
		b.WriteString("\x00")
		b.WriteString(obs.Name)
		for _, name := range []string{ical.PropDateTimeStart, "TZOFFSETFROM", "TZOFFSETTO", ical.PropRecurrenceRule, ical.PropRecurrenceDates, "TZNAME"} {
			for _, p := range obs.Props[name] {
				b.WriteString("\x01")
				b.WriteString(name)
				b.WriteString(":")
				b.WriteString(p.Value)
			}
		}
	}
	return b.String()
}

// buildZone makes a location from a VTIMEZONE's observances.
func buildZone(tzid string, def *ical.Component) (*time.Location, error) {
	fp := fingerprint(tzid, def)
	if loc, ok := builtZones.Load(fp); ok {
		return loc.(*time.Location), nil
	}
	loc, err := zoneFromObservances(tzid, def)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: VTIMEZONE: %w", tzid, err)
	}
	builtMu.Lock()
	if builtCount < maxBuiltZon {
		if _, loaded := builtZones.LoadOrStore(fp, loc); !loaded {
			builtCount++
		}
	}
	builtMu.Unlock()
	return loc, nil
}

// transition is one change of offset.
type transition struct {
	at     int64 // Unix seconds
	offset int   // seconds east of UTC after it
	dst    bool
	abbr   string
}

func zoneFromObservances(tzid string, def *ical.Component) (*time.Location, error) {
	var trans []transition
	horizon := time.Date(zoneHorizon, 1, 1, 0, 0, 0, 0, time.UTC)
	initial := transition{at: 1<<63 - 1}
	observances := 0
	for _, obs := range def.Children {
		if obs.Name != "STANDARD" && obs.Name != "DAYLIGHT" {
			continue
		}
		observances++
		from, err := utcOffset(obs.Props.Get("TZOFFSETFROM"))
		if err != nil {
			return nil, fmt.Errorf("%s TZOFFSETFROM: %w", obs.Name, err)
		}
		to, err := utcOffset(obs.Props.Get("TZOFFSETTO"))
		if err != nil {
			return nil, fmt.Errorf("%s TZOFFSETTO: %w", obs.Name, err)
		}
		p := obs.Props.Get(ical.PropDateTimeStart)
		if p == nil {
			return nil, fmt.Errorf("%s without DTSTART", obs.Name)
		}
		start, err := wallTime(strings.TrimSuffix(p.Value, "Z"))
		if err != nil {
			return nil, fmt.Errorf("%s DTSTART: %w", obs.Name, err)
		}
		// Wall times of the observance's onsets, in TZOFFSETFROM.
		walls := []time.Time{start}
		if rp := obs.Props.Get(ical.PropRecurrenceRule); rp != nil {
			if walls, err = onsets(start, rp.Value, from, horizon); err != nil {
				return nil, fmt.Errorf("%s RRULE: %w", obs.Name, err)
			}
		}
		for _, rp := range obs.Props[ical.PropRecurrenceDates] {
			for v := range strings.SplitSeq(rp.Value, ",") {
				v, _, _ = strings.Cut(v, "/") // PERIOD: its start
				w, err := wallTime(strings.TrimSuffix(v, "Z"))
				if err != nil {
					return nil, fmt.Errorf("%s RDATE: %w", obs.Name, err)
				}
				walls = append(walls, w)
			}
		}
		t := transition{offset: to, dst: obs.Name == "DAYLIGHT", abbr: abbreviation(obs, to)}
		for _, w := range walls {
			if !w.Before(horizon) {
				continue
			}
			t.at = w.Unix() - int64(from)
			trans = append(trans, t)
			if t.at < initial.at {
				// Before its first onset, the zone is at this one's "from".
				initial = transition{at: t.at, offset: from, dst: !t.dst && from != to, abbr: numericAbbr(from)}
			}
		}
	}
	if observances == 0 {
		return nil, errors.New("no STANDARD or DAYLIGHT observance")
	}
	slices.SortStableFunc(trans, func(a, b transition) int {
		switch {
		case a.at < b.at:
			return -1
		case a.at > b.at:
			return 1
		}
		return 0
	})
	// Transitions before the floor only decide the offset in force at it;
	// transitions that change nothing are dropped.
	floor := time.Date(zoneFloor, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	var kept []transition
	cur := initial
	for _, t := range trans {
		if t.at < floor {
			cur = t
			initial = t
			continue
		}
		if t.offset == cur.offset && t.dst == cur.dst && t.abbr == cur.abbr {
			continue
		}
		kept = append(kept, t)
		cur = t
	}
	if len(kept) == 0 {
		return time.FixedZone(tzid, initial.offset), nil
	}
	return tzif(tzid, initial, kept)
}

// onsets expands an observance's RRULE from its first onset (a wall
// time) up to the horizon, at most twice a year.
func onsets(start time.Time, rule string, from int, horizon time.Time) ([]time.Time, error) {
	opt, untilText, err := parseRule(rule)
	if err != nil {
		return nil, err
	}
	var until time.Time // an instant (UNTIL in UTC, as RFC 5545 asks) or a wall time
	untilWall := !strings.HasSuffix(untilText, "Z")
	if untilText != "" {
		if until, err = wallTime(strings.TrimSuffix(untilText, "Z")); err != nil {
			if y, m, d, ok := parseDate(untilText); ok {
				until, err = time.Date(y, time.Month(m), d, 23, 59, 59, 0, time.UTC), nil
			} else {
				return nil, fmt.Errorf("UNTIL: %w", err)
			}
		}
	}
	if opt.Freq != rrule.YEARLY && opt.Freq != rrule.MONTHLY {
		return nil, fmt.Errorf("FREQ=%s (zones change yearly)", opt.Freq)
	}
	opt.Dtstart = start
	if opt.Freq == rrule.YEARLY && opt.Count == 0 && start.Year() < zoneFloor-1 {
		// Outlook starts its rules in 1601; nothing before 1970 is
		// needed, and the rule only takes the month and time from here.
		opt.Dtstart = time.Date(zoneFloor-1, start.Month(), min(start.Day(), 28), start.Hour(), start.Minute(), start.Second(), 0, time.UTC)
		if len(opt.Bymonth) == 0 && len(opt.Bymonthday) == 0 && len(opt.Byyearday) == 0 && len(opt.Byweekday) == 0 && len(opt.Byweekno) == 0 {
			opt.Dtstart = time.Date(zoneFloor-1, start.Month(), start.Day(), start.Hour(), start.Minute(), start.Second(), 0, time.UTC)
		}
	}
	var walls []time.Time
	perr := guard(func() {
		var r *rrule.RRule
		if r, err = rrule.NewRRule(*opt); err != nil {
			return
		}
		next := r.Iterator()
		for n := 0; n < 2*(zoneHorizon-zoneFloor+2); n++ {
			w, ok := next()
			if !ok || !w.Before(horizon) {
				break
			}
			if !until.IsZero() && (untilWall && w.After(until) || !untilWall && w.Add(-time.Duration(from)*time.Second).After(until)) {
				break
			}
			walls = append(walls, w)
		}
	})
	if perr != nil {
		return nil, perr
	}
	return walls, err
}

// tzif encodes transitions as TZif version 2 (RFC 8536) and loads them:
// the only way to make a *time.Location with daylight saving time from
// data. The location answers like any IANA one, so recurrence expansion
// keeps wall-clock times across DST changes.
func tzif(name string, initial transition, trans []transition) (*time.Location, error) {
	type ttype struct {
		offset int
		dst    bool
		abbr   string
	}
	// Type 0 is the zone before the first transition (RFC 8536: used by
	// readers for times before it when no transition refers to it).
	types := []ttype{{initial.offset, initial.dst, initial.abbr}}
	index := map[ttype]int{}
	idx := make([]byte, len(trans))
	for i, t := range trans {
		k := ttype{t.offset, t.dst, t.abbr}
		j, ok := index[k]
		if !ok {
			if len(types) == 255 {
				return nil, errors.New("too many distinct offsets")
			}
			j = len(types)
			types = append(types, k)
			index[k] = j
		}
		idx[i] = byte(j)
	}
	var chars []byte
	abbrAt := map[string]int{}
	for _, t := range types {
		if _, ok := abbrAt[t.abbr]; !ok {
			abbrAt[t.abbr] = len(chars)
			chars = append(append(chars, t.abbr...), 0)
		}
	}
	var b []byte
	header := func(timecnt, typecnt, charcnt int) {
		b = append(b, "TZif2"...)
		b = append(b, make([]byte, 15)...)
		for _, n := range []int{0, 0, 0, timecnt, typecnt, charcnt} {
			b = binary.BigEndian.AppendUint32(b, uint32(n))
		}
	}
	// An empty version 1 block, then the 64-bit data.
	header(0, 0, 0)
	header(len(trans), len(types), len(chars))
	for _, t := range trans {
		b = binary.BigEndian.AppendUint64(b, uint64(t.at))
	}
	b = append(b, idx...)
	for _, t := range types {
		b = binary.BigEndian.AppendUint32(b, uint32(int32(t.offset)))
		dst := byte(0)
		if t.dst {
			dst = 1
		}
		b = append(b, dst, byte(abbrAt[t.abbr]))
	}
	b = append(b, chars...)
	b = append(b, '\n', '\n')
	return time.LoadLocationFromTZData(name, b)
}

// utcOffset reads a UTC-OFFSET value: "+0100", "-0500", "+053000".
func utcOffset(p *ical.Prop) (int, error) {
	if p == nil {
		return 0, errors.New("missing")
	}
	v := strings.TrimSpace(p.Value)
	if len(v) != 5 && len(v) != 7 || v[0] != '+' && v[0] != '-' {
		return 0, fmt.Errorf("%q is not ±HHMM[SS]", v)
	}
	var n [3]int
	for i := 0; i*2+1 < len(v); i++ {
		d, ok := digits(v[1+2*i : 3+2*i])
		if !ok {
			return 0, fmt.Errorf("%q is not ±HHMM[SS]", v)
		}
		n[i] = d
	}
	if n[0] > 23 || n[1] > 59 || n[2] > 59 {
		return 0, fmt.Errorf("%q is out of range", v)
	}
	s := n[0]*3600 + n[1]*60 + n[2]
	if v[0] == '-' {
		s = -s
	}
	return s, nil
}

// abbreviation is the observance's TZNAME when it is a plain one, else
// the offset ("+0530").
func abbreviation(obs *ical.Component, offset int) string {
	if p := obs.Props.Get("TZNAME"); p != nil {
		v := strings.TrimSpace(p.Value)
		ok := len(v) >= 3 && len(v) <= 6
		for i := 0; i < len(v) && ok; i++ {
			c := v[i]
			ok = c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-'
		}
		if ok {
			return v
		}
	}
	return numericAbbr(offset)
}

func numericAbbr(offset int) string {
	sign := '+'
	if offset < 0 {
		sign, offset = '-', -offset
	}
	if offset%60 != 0 {
		return fmt.Sprintf("%c%02d%02d%02d", sign, offset/3600, offset/60%60, offset%60)
	}
	return fmt.Sprintf("%c%02d%02d", sign, offset/3600, offset/60%60)
}
