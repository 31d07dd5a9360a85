package ics

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-ical"
)

func vtimezones(t *testing.T, file string) map[string]*ical.Component {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	cal, err := decode(data)
	if err != nil {
		t.Fatal(err)
	}
	return newZones(cal, nil).defs
}

// A zone built from a VTIMEZONE's observances must agree with the IANA
// zone it describes at every hour of the years its rules hold.
func TestBuiltZonesMatchIANA(t *testing.T) {
	outlook := vtimezones(t, "outlook.ics")
	fastmail := vtimezones(t, "fastmail.ics")
	cases := []struct {
		def      *ical.Component
		tzid     string
		iana     string
		from, to int
	}{
		{outlook["W. Europe Standard Time"], "W. Europe Standard Time", "Europe/Berlin", 1997, 2037},
		{outlook["Pacific Standard Time"], "Pacific Standard Time", "America/Los_Angeles", 2008, 2037},
		{fastmail["Australia/Melbourne"], "Australia/Melbourne", "Australia/Melbourne", 2009, 2037},
	}
	for _, tc := range cases {
		t.Run(tc.tzid, func(t *testing.T) {
			if tc.def == nil {
				t.Fatal("no VTIMEZONE")
			}
			built, err := zoneFromObservances(tc.tzid, tc.def)
			if err != nil {
				t.Fatal(err)
			}
			iana := mustZone(t, tc.iana)
			end := time.Date(tc.to, 12, 31, 0, 0, 0, 0, time.UTC)
			for at := time.Date(tc.from, 1, 1, 0, 30, 0, 0, time.UTC); at.Before(end); at = at.Add(time.Hour) {
				_, got := at.In(built).Zone()
				_, want := at.In(iana).Zone()
				if got != want {
					t.Fatalf("%v: offset %d, %s has %d", at, got, tc.iana, want)
				}
			}
			// Wall-clock reading, as events use it, across the spring change.
			if tc.iana == "Europe/Berlin" {
				a := wallIn(2024, 3, 31, 9, 0, 0, built)
				if a.UTC() != time.Date(2024, 3, 31, 7, 0, 0, 0, time.UTC) {
					t.Errorf("09:00 on 31 March 2024 = %v", a.UTC())
				}
			}
		})
	}
}

func TestZoneResolution(t *testing.T) {
	data := []byte(strings.Join([]string{
		"BEGIN:VCALENDAR",
		"BEGIN:VTIMEZONE", "TZID:Romance Standard Time", "X-LIC-LOCATION:Europe/Paris",
		"BEGIN:STANDARD", "DTSTART:16010101T030000", "TZOFFSETFROM:+0200", "TZOFFSETTO:+0100", "END:STANDARD",
		"END:VTIMEZONE",
		"BEGIN:VTIMEZONE", "TZID:Fixed", "BEGIN:STANDARD", "DTSTART:19700101T000000", "TZOFFSETFROM:+0930", "TZOFFSETTO:+0930", "END:STANDARD", "END:VTIMEZONE",
		"BEGIN:VTIMEZONE", "TZID:Broken", "BEGIN:STANDARD", "DTSTART:19700101T000000", "TZOFFSETFROM:1", "TZOFFSETTO:+0100", "END:STANDARD", "END:VTIMEZONE",
		"END:VCALENDAR", ""}, "\r\n"))
	cal, err := decode(data)
	if err != nil {
		t.Fatal(err)
	}
	windows := func(name string) (*time.Location, error) {
		if name == "Tokyo Standard Time" {
			return time.LoadLocation("Asia/Tokyo")
		}
		return nil, os.ErrNotExist
	}
	z := newZones(cal, windows)
	for tzid, want := range map[string]string{
		"Europe/Berlin":                         "Europe/Berlin",
		" America/New_York ":                    "America/New_York",
		"/mozilla.org/20050126_1/Europe/Berlin": "Europe/Berlin",
		"/softwarestudio.org/Olson_20011030_5/America/Argentina/Buenos_Aires": "America/Argentina/Buenos_Aires",
		"Tokyo Standard Time":   "Asia/Tokyo",
		"Romance Standard Time": "Europe/Paris",
		"Fixed":                 "Fixed",
		"UTC":                   "UTC",
	} {
		loc, err := z.load(tzid)
		if err != nil {
			t.Errorf("%q: %v", tzid, err)
			continue
		}
		if loc.String() != want {
			t.Errorf("%q = %s, want %s", tzid, loc, want)
		}
	}
	if loc, _ := z.load("Fixed"); loc != nil {
		if _, off := time.Date(2024, 7, 1, 0, 0, 0, 0, loc).Zone(); off != 9*3600+1800 {
			t.Errorf("Fixed offset %d", off)
		}
	}
	for tzid, msg := range map[string]string{
		"Local":       "no VTIMEZONE",
		"Mars/Base":   "no VTIMEZONE",
		"Broken":      "TZOFFSETFROM",
		"":            "empty TZID",
		"../../etc/x": "no VTIMEZONE",
	} {
		if _, err := z.load(tzid); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: %v, want an error about %s", tzid, err, msg)
		}
	}
}

// RFC 5545 §3.3.5: a wall time in the spring gap is read with the offset
// before it; one in the autumn overlap is the first.
func TestWallTimesAtDSTChanges(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	for _, tc := range []struct {
		h, mi int
		month time.Month
		day   int
		want  time.Time
	}{
		{2, 30, time.March, 31, time.Date(2024, 3, 31, 1, 30, 0, 0, time.UTC)},
		{3, 0, time.March, 31, time.Date(2024, 3, 31, 1, 0, 0, 0, time.UTC)},
		{1, 59, time.March, 31, time.Date(2024, 3, 31, 0, 59, 0, 0, time.UTC)},
		{2, 30, time.October, 27, time.Date(2024, 10, 27, 0, 30, 0, 0, time.UTC)},
		{3, 0, time.October, 27, time.Date(2024, 10, 27, 2, 0, 0, 0, time.UTC)},
		{12, 0, time.October, 27, time.Date(2024, 10, 27, 11, 0, 0, 0, time.UTC)},
	} {
		if got := wallIn(2024, tc.month, tc.day, tc.h, tc.mi, 0, berlin); !got.Equal(tc.want) {
			t.Errorf("%02d:%02d on %s %d = %v, want %v", tc.h, tc.mi, tc.month, tc.day, got.UTC(), tc.want)
		}
	}
}
