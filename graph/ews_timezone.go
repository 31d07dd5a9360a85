package graph

// Time zones as EWS encodes them.
//
// GetUserAvailability describes a time zone not by name but as a
// SerializableTimeZone (types.xsd): a base Bias in minutes (UTC = local +
// bias), a StandardTime and a DaylightTime each with its own extra Bias and a
// yearly rule for when it starts ("the DayOrder-th DayOfWeek of Month at
// Time", DayOrder 5 meaning the last), the same shape as Windows'
// TIME_ZONE_INFORMATION. The request carries one (the zone of TimeWindow and
// of the answer's times: the source always sends UTC), and each mailbox's
// WorkingHours carries the mailbox's own zone, which becomes
// rules.MailboxFacts.Location for status texts ("until 14:30").
//
// A zone is turned into a *time.Location by looking for a Windows zone of
// the CLDR table (windowszones.go) whose IANA zone keeps exactly these
// offsets and transitions in the year asked about, so names and future rule
// changes come from tzdata; a zone no IANA zone matches (an old rule, a
// custom zone) is built from its own rule as a POSIX TZ string.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ewsTimeZone is a SerializableTimeZone as it appears on the wire.
type ewsTimeZone struct {
	Bias         string        `xml:"Bias"`
	StandardTime ewsZoneChange `xml:"StandardTime"`
	DaylightTime ewsZoneChange `xml:"DaylightTime"`
}

// ewsZoneChange is a SerializableTimeZoneTime: when (yearly) a zone's
// standard or daylight time begins, and its extra bias.
type ewsZoneChange struct {
	Bias      string `xml:"Bias"`
	Time      string `xml:"Time"`
	DayOrder  string `xml:"DayOrder"`
	Month     string `xml:"Month"`
	DayOfWeek string `xml:"DayOfWeek"`
	// Year, for a one-off change, is ignored: the rule is taken as yearly.
	Year string `xml:"Year"`
}

// zoneRule is an ewsTimeZone checked and in seconds east of UTC.
type zoneRule struct {
	std, dst int // offsets east of UTC
	hasDST   bool
	// toDST and toStd say when daylight and standard time begin.
	toDST, toStd changeRule
}

type changeRule struct {
	month, order int // order 1–4, 5 = last
	weekday      time.Weekday
	at           int // seconds after local midnight, in the time then in force
}

var weekdays = map[string]time.Weekday{"Sunday": time.Sunday, "Monday": time.Monday, "Tuesday": time.Tuesday,
	"Wednesday": time.Wednesday, "Thursday": time.Thursday, "Friday": time.Friday, "Saturday": time.Saturday}

func (z ewsTimeZone) rule() (zoneRule, error) {
	bias, err := minutes("Bias", z.Bias)
	if err != nil {
		return zoneRule{}, err
	}
	sb, err := minutes("StandardTime/Bias", z.StandardTime.Bias)
	if err != nil {
		return zoneRule{}, err
	}
	db, err := minutes("DaylightTime/Bias", z.DaylightTime.Bias)
	if err != nil {
		return zoneRule{}, err
	}
	r := zoneRule{std: -(bias + sb) * 60, dst: -(bias + db) * 60}
	if absInt(r.std) > 18*3600 || absInt(r.dst) > 18*3600 {
		return zoneRule{}, fmt.Errorf("time zone offset out of range (bias %d, %d, %d minutes)", bias, sb, db)
	}
	if r.std == r.dst || isNoChange(z.StandardTime) || isNoChange(z.DaylightTime) {
		// Without daylight saving time the transitions are meaningless
		// (Exchange sends Month 0 or the same bias).
		r.dst = r.std
		return r, nil
	}
	if r.toDST, err = z.DaylightTime.rule("DaylightTime"); err != nil {
		return zoneRule{}, err
	}
	if r.toStd, err = z.StandardTime.rule("StandardTime"); err != nil {
		return zoneRule{}, err
	}
	r.hasDST = true
	return r, nil
}

func isNoChange(c ewsZoneChange) bool {
	m := strings.TrimSpace(c.Month)
	return m == "" || m == "0"
}

func (c ewsZoneChange) rule(name string) (changeRule, error) {
	month, err := strconv.Atoi(strings.TrimSpace(c.Month))
	if err != nil || month < 1 || month > 12 {
		return changeRule{}, fmt.Errorf("time zone %s/Month %q is not 1–12", name, c.Month)
	}
	order, err := strconv.Atoi(strings.TrimSpace(c.DayOrder))
	if err != nil || order < 1 || order > 5 {
		return changeRule{}, fmt.Errorf("time zone %s/DayOrder %q is not 1–5", name, c.DayOrder)
	}
	wd, ok := weekdays[strings.TrimSpace(c.DayOfWeek)]
	if !ok {
		return changeRule{}, fmt.Errorf("time zone %s/DayOfWeek %q is not a day", name, c.DayOfWeek)
	}
	at, err := clock(strings.TrimSpace(c.Time))
	if err != nil {
		return changeRule{}, fmt.Errorf("time zone %s/Time %q: %v", name, c.Time, err)
	}
	return changeRule{month: month, order: order, weekday: wd, at: at}, nil
}

// clock reads "HH:MM:SS" (or "HH:MM") as seconds after midnight.
func clock(s string) (int, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, errors.New("not HH:MM:SS")
	}
	total := 0
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || (i > 0 && n > 59) || (i == 0 && n > 24) {
			return 0, errors.New("not HH:MM:SS")
		}
		total = total*60 + n
	}
	if len(parts) == 2 {
		total *= 60
	}
	return total, nil
}

func minutes(name, s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || absInt(n) > 24*60 {
		return 0, fmt.Errorf("time zone %s %q is not a number of minutes", name, s)
	}
	return n, nil
}

func absInt(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// instant is when the change happens in year, as an instant: the local
// clock time is in the offset in force before it (Windows' rule).
func (c changeRule) instant(year, before int) time.Time {
	first := time.Date(year, time.Month(c.month), 1, 0, 0, 0, 0, time.UTC)
	day := 1 + (int(c.weekday)-int(first.Weekday())+7)%7 + 7*(c.order-1)
	if last := first.AddDate(0, 1, -1).Day(); day > last {
		day -= 7
	}
	local := time.Date(year, time.Month(c.month), day, 0, 0, 0, 0, time.UTC).Add(time.Duration(c.at) * time.Second)
	return local.Add(-time.Duration(before) * time.Second)
}

// offset is the rule's offset at t.
func (r zoneRule) offset(t time.Time) int {
	if !r.hasDST {
		return r.std
	}
	year := t.UTC().Year()
	toDST, toStd := r.toDST.instant(year, r.std), r.toStd.instant(year, r.dst)
	var inDST bool
	if toDST.Before(toStd) { // northern hemisphere
		inDST = !t.Before(toDST) && t.Before(toStd)
	} else {
		inDST = !t.Before(toDST) || t.Before(toStd)
	}
	if inDST {
		return r.dst
	}
	return r.std
}

// matches reports whether loc keeps the rule's offsets through year: at
// two instants a month and just around each transition.
func (r zoneRule) matches(loc *time.Location, year int) bool {
	var probes []time.Time
	for m := time.January; m <= time.December; m++ {
		probes = append(probes, time.Date(year, m, 1, 12, 0, 0, 0, time.UTC), time.Date(year, m, 15, 12, 0, 0, 0, time.UTC))
	}
	if r.hasDST {
		for _, t := range []time.Time{r.toDST.instant(year, r.std), r.toStd.instant(year, r.dst)} {
			probes = append(probes, t.Add(-time.Minute), t.Add(time.Minute))
		}
	}
	for _, t := range probes {
		if _, off := t.In(loc).Zone(); off != r.offset(t) {
			return false
		}
	}
	return true
}

// ewsZoneCache maps a zone (rule and year) to its location.
var ewsZoneCache sync.Map

// windowsZoneNames are the Windows zones in a fixed order, so the same rule
// always picks the same zone (several share their offsets and rules).
var windowsZoneNames = func() []string {
	names := make([]string, 0, len(windowsZones))
	for k := range windowsZones {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}()

// location turns the zone into a location that keeps its offsets in year
// (see the top of the file).
func (z ewsTimeZone) location(year int) (*time.Location, error) {
	r, err := z.rule()
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%d/%+v", year, r)
	if loc, ok := ewsZoneCache.Load(key); ok {
		return loc.(*time.Location), nil
	}
	loc := r.match(year)
	if loc == nil {
		if loc, err = r.posix(); err != nil {
			return nil, err
		}
	}
	actual, _ := ewsZoneCache.LoadOrStore(key, loc)
	return actual.(*time.Location), nil
}

func (r zoneRule) match(year int) *time.Location {
	if !r.hasDST && r.std == 0 {
		return time.UTC
	}
	for _, name := range windowsZoneNames {
		loc, err := LoadZone(name)
		if err == nil && r.matches(loc, year) {
			return loc
		}
	}
	return nil
}

// posix builds a location from the rule itself: a TZif blob without
// transitions whose footer is the POSIX TZ string of the rule, which Go
// applies to all time.
func (r zoneRule) posix() (*time.Location, error) {
	std := zoneAbbr(r.std)
	tz := "<" + std + ">" + posixOffset(r.std)
	if r.hasDST {
		tz += "<" + zoneAbbr(r.dst) + ">" + posixOffset(r.dst) + "," + r.toDST.posix() + "," + r.toStd.posix()
	}
	var b bytes.Buffer
	block := func() {
		b.WriteString("TZif2")
		b.Write(make([]byte, 15))
		// isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
		for _, n := range []uint32{0, 0, 0, 0, 1, uint32(len(std) + 1)} {
			_ = binary.Write(&b, binary.BigEndian, n)
		}
		_ = binary.Write(&b, binary.BigEndian, int32(r.std))
		b.Write([]byte{0, 0})
		b.WriteString(std)
		b.WriteByte(0)
	}
	block() // version 1 data
	block() // version 2 data
	b.WriteString("\n" + tz + "\n")
	return time.LoadLocationFromTZData("EWS "+tz, b.Bytes())
}

// zoneAbbr names an offset as tzdata does for zones without letters: +01,
// -0330.
func zoneAbbr(off int) string {
	sign := "+"
	if off < 0 {
		sign, off = "-", -off
	}
	if off%3600 == 0 {
		return fmt.Sprintf("%s%02d", sign, off/3600)
	}
	return fmt.Sprintf("%s%02d%02d", sign, off/3600, off%3600/60)
}

// posixOffset is an offset as POSIX TZ writes it: west of UTC positive.
func posixOffset(off int) string {
	sign := ""
	if off > 0 {
		sign = "-"
	} else {
		off = -off
	}
	return fmt.Sprintf("%s%d:%02d", sign, off/3600, off%3600/60)
}

func (c changeRule) posix() string {
	return fmt.Sprintf("M%d.%d.%d/%d:%02d:%02d", c.month, c.order, int(c.weekday), c.at/3600, c.at%3600/60, c.at%60)
}
