package ics

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/teambition/rrule-go"
)

// Value types of RFC 5545 §3.3 the source reads, parsed by hand: the
// formats are fixed-width, and time.Parse would cost more than the rest
// of an event.

// digits reads an unsigned decimal of ASCII digits only.
func digits(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// parseDate reads a DATE, "20240315".
func parseDate(v string) (y, m, d int, ok bool) {
	if len(v) != 8 {
		return 0, 0, 0, false
	}
	y, ok1 := digits(v[:4])
	m, ok2 := digits(v[4:6])
	d, ok3 := digits(v[6:8])
	if !ok1 || !ok2 || !ok3 || y < minYear || y > maxYear || m < 1 || m > 12 || d < 1 || d > daysIn(y, time.Month(m)) {
		return 0, 0, 0, false
	}
	return y, m, d, true
}

// The years a date may have: Outlook's zones start in 1601, and rrule-go
// stops at 9999 (and fails on year 0).
const minYear, maxYear = 1601, 9000

// guard runs fn, turning a panic into an error: rrule-go panics on some
// rules that pass its own validation.
func guard(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("recurrence rule rejected by rrule-go: %v", r)
		}
	}()
	fn()
	return nil
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// parseClock reads a TIME without zone, "093000".
func parseClock(v string) (h, mi, s int, ok bool) {
	if len(v) != 6 {
		return 0, 0, 0, false
	}
	h, ok1 := digits(v[:2])
	mi, ok2 := digits(v[2:4])
	s, ok3 := digits(v[4:6])
	if !ok1 || !ok2 || !ok3 || h > 23 || mi > 59 || s > 60 {
		return 0, 0, 0, false
	}
	return h, mi, min(s, 59), true // a leap second counts as :59
}

// wallTime reads a DATE-TIME without zone, "20240315T093000", as a wall
// time in UTC.
func wallTime(v string) (time.Time, error) {
	return localTime(v, time.UTC)
}

// localTime reads a DATE-TIME without zone as a wall time in loc. A wall
// time that a DST change skips moves forward by the gap (RFC 5545
// §3.3.5: 02:30 on the spring-forward day is 03:30).
func localTime(v string, loc *time.Location) (time.Time, error) {
	date, clock, ok := strings.Cut(v, "T")
	if !ok {
		return time.Time{}, fmt.Errorf("%s is not a date-time (YYYYMMDDTHHMMSS)", clip(v))
	}
	y, m, d, ok1 := parseDate(date)
	h, mi, s, ok2 := parseClock(clock)
	if !ok1 || !ok2 {
		return time.Time{}, fmt.Errorf("%s is not a valid date-time", clip(v))
	}
	return wallIn(y, time.Month(m), d, h, mi, s, loc), nil
}

// wallIn is time.Date with RFC 5545's answers where Go leaves the choice
// open (§3.3.5): a wall time that a DST change skips is read with the
// offset before the gap (02:30 becomes 03:30), and one that occurs twice
// is the first (the daylight-saving one).
func wallIn(y int, m time.Month, d, h, mi, s int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, h, mi, s, 0, loc)
	if loc == time.UTC {
		return t
	}
	_, before := t.Add(-24 * time.Hour).Zone()
	_, after := t.Add(24 * time.Hour).Zone()
	if before == after {
		return t // no change of offset near: t is the only reading
	}
	base := time.Date(y, m, d, h, mi, s, 0, time.UTC)
	is := func(c time.Time) bool {
		cy, cm, cd := c.Date()
		ch, cmi, cs := c.Clock()
		return cy == y && cm == m && cd == d && ch == h && cmi == mi && cs == s
	}
	first := base.Add(-time.Duration(before) * time.Second).In(loc)
	if is(first) {
		return first
	}
	if second := base.Add(-time.Duration(after) * time.Second).In(loc); is(second) {
		return second
	}
	return first // in the gap
}

// parseDuration reads a DURATION, "PT1H30M", "P1D", "P2W", as nominal
// days (kept in wall-clock time: a day over a DST change is 23 or 25
// hours) and an exact part.
func parseDuration(v string) (days int, exact time.Duration, err error) {
	bad := func() (int, time.Duration, error) {
		return 0, 0, fmt.Errorf("%s is not a duration", clip(v))
	}
	s := strings.TrimPrefix(v, "+")
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	if !strings.HasPrefix(s, "P") || len(s) < 3 {
		return bad()
	}
	s = s[1:]
	inTime := false
	for s != "" {
		if s[0] == 'T' {
			if inTime {
				return bad()
			}
			inTime, s = true, s[1:]
			continue
		}
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i == len(s) || i > 6 {
			return bad()
		}
		n, _ := digits(s[:i])
		switch unit := s[i]; {
		case !inTime && unit == 'W':
			days += 7 * n
		case !inTime && unit == 'D':
			days += n
		case inTime && unit == 'H':
			exact += time.Duration(n) * time.Hour
		case inTime && unit == 'M':
			exact += time.Duration(n) * time.Minute
		case inTime && unit == 'S':
			exact += time.Duration(n) * time.Second
		default:
			return bad()
		}
		s = s[i+1:]
	}
	if neg {
		return -days, -exact, nil
	}
	return days, exact, nil
}

// parseRule reads an RRULE value into rrule-go's options, leniently where
// producers are sloppy (lower case, empty parts, a trailing ";", X- parts)
// and strictly elsewhere. UNTIL comes back as text: how it is read
// depends on the DTSTART it belongs to.
func parseRule(v string) (*rrule.ROption, string, error) {
	var parts []string
	var until string
	for part := range strings.SplitSeq(strings.ToUpper(strings.TrimSpace(v)), ";") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		key, val, ok := strings.Cut(part, "=")
		if !ok || val == "" {
			return nil, "", fmt.Errorf("%s: expected NAME=value", clip(part))
		}
		switch {
		case key == "UNTIL":
			until = val
			continue
		case key == "COUNT":
			if n, ok := digits(val); !ok || n < 1 {
				return nil, "", fmt.Errorf("COUNT=%s", clip(val))
			}
		case key == "INTERVAL":
			if n, ok := digits(val); !ok || n < 1 || n > 10000 {
				return nil, "", fmt.Errorf("INTERVAL=%s", clip(val))
			}
		case key == "RSCALE":
			if val != "GREGORIAN" {
				return nil, "", fmt.Errorf("RSCALE=%s: only the Gregorian calendar is supported", clip(val))
			}
			continue
		case key == "SKIP", strings.HasPrefix(key, "X-"):
			continue
		}
		parts = append(parts, key+"="+val)
	}
	opt, err := rrule.StrToROption(strings.Join(parts, ";"))
	if err != nil {
		return nil, "", err
	}
	return opt, until, nil
}

// atoiOr reads an integer property value, or def.
func atoiOr(v string, def int) int {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return def
	}
	return n
}
