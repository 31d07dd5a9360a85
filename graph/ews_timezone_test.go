package graph

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func change(bias, at string, order, month int, day string) ewsZoneChange {
	return ewsZoneChange{Bias: bias, Time: at, DayOrder: strconv.Itoa(order), Month: strconv.Itoa(month), DayOfWeek: day}
}

// pacific2006 is the request time zone of the documented sample (fixture
// C): US Pacific with the rules before 2007 (first Sunday of April to the
// last Sunday of October).
var pacific2006 = ewsTimeZone{Bias: "480",
	StandardTime: change("0", "02:00:00", 5, 10, "Sunday"),
	DaylightTime: change("-60", "02:00:00", 1, 4, "Sunday")}

func TestEWSTimeZone(t *testing.T) {
	cet := ewsTimeZone{Bias: "-60", StandardTime: change("0", "03:00:00", 5, 10, "Sunday"), DaylightTime: change("-60", "02:00:00", 5, 3, "Sunday")}
	aest := ewsTimeZone{Bias: "-600", StandardTime: change("0", "03:00:00", 1, 4, "Sunday"), DaylightTime: change("-60", "02:00:00", 1, 10, "Sunday")}
	india := ewsTimeZone{Bias: "-330", StandardTime: change("0", "00:00:00", 0, 0, "Sunday"), DaylightTime: change("0", "00:00:00", 0, 0, "Sunday")}
	utc := ewsTimeZone{Bias: "0", StandardTime: change("0", "02:00:00", 5, 10, "Sunday"), DaylightTime: change("0", "02:00:00", 5, 3, "Sunday")}
	type probe struct {
		at  time.Time
		off int // minutes east of UTC
	}
	tests := []struct {
		name   string
		zone   ewsTimeZone
		year   int
		iana   bool // matched to an IANA zone (else built from the rule)
		probes []probe
	}{
		{"docs pacific in 2006 is Los Angeles", pacific2006, 2006, true, []probe{
			{time.Date(2006, 4, 2, 9, 59, 0, 0, time.UTC), -480}, {time.Date(2006, 4, 2, 10, 0, 0, 0, time.UTC), -420},
			{time.Date(2006, 10, 29, 8, 59, 0, 0, time.UTC), -420}, {time.Date(2006, 10, 29, 9, 0, 0, 0, time.UTC), -480}}},
		{"docs pacific in 2026 keeps its own rule", pacific2006, 2026, false, []probe{
			// 2026: first Sunday of April is the 5th, last of October the 25th.
			{time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC), -480},
			{time.Date(2026, 4, 5, 9, 59, 0, 0, time.UTC), -480}, {time.Date(2026, 4, 5, 10, 0, 0, 0, time.UTC), -420},
			{time.Date(2026, 10, 25, 8, 59, 0, 0, time.UTC), -420}, {time.Date(2026, 10, 25, 9, 0, 0, 0, time.UTC), -480}}},
		{"central europe", cet, 2026, true, []probe{
			{time.Date(2026, 3, 29, 0, 59, 0, 0, time.UTC), 60}, {time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC), 120},
			{time.Date(2026, 10, 25, 0, 59, 0, 0, time.UTC), 120}, {time.Date(2026, 10, 25, 1, 0, 0, 0, time.UTC), 60}}},
		{"sydney, southern hemisphere", aest, 2026, true, []probe{
			{time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC), 660}, {time.Date(2026, 7, 15, 0, 0, 0, 0, time.UTC), 600},
			{time.Date(2026, 4, 4, 15, 59, 0, 0, time.UTC), 660}, {time.Date(2026, 4, 4, 16, 0, 0, 0, time.UTC), 600}}},
		{"india, no daylight time", india, 2026, true, []probe{
			{time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC), 330}, {time.Date(2026, 7, 15, 0, 0, 0, 0, time.UTC), 330}}},
		{"the source's own UTC", utc, 2026, true, []probe{
			{time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC), 0}, {time.Date(2026, 7, 15, 0, 0, 0, 0, time.UTC), 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc, err := tt.zone.location(tt.year)
			if err != nil {
				t.Fatal(err)
			}
			if got := !strings.HasPrefix(loc.String(), "EWS "); got != tt.iana {
				t.Errorf("location %q: from IANA %v, want %v", loc, got, tt.iana)
			}
			for _, p := range tt.probes {
				if _, off := p.at.In(loc).Zone(); off != p.off*60 {
					t.Errorf("%s at %s: offset %d min, want %d", loc, p.at, off/60, p.off)
				}
			}
		})
	}
}

func TestEWSTimeZoneErrors(t *testing.T) {
	bad := []ewsTimeZone{
		{Bias: "eight"},
		{Bias: "100000"},
		{Bias: "-60", StandardTime: change("0", "03:00:00", 5, 13, "Sunday"), DaylightTime: change("-60", "02:00:00", 5, 3, "Sunday")},
		{Bias: "-60", StandardTime: change("0", "03:00:00", 7, 10, "Sunday"), DaylightTime: change("-60", "02:00:00", 5, 3, "Sunday")},
		{Bias: "-60", StandardTime: change("0", "03:00:00", 5, 10, "Caturday"), DaylightTime: change("-60", "02:00:00", 5, 3, "Sunday")},
		{Bias: "-60", StandardTime: change("0", "3 o'clock", 5, 10, "Sunday"), DaylightTime: change("-60", "02:00:00", 5, 3, "Sunday")},
		{Bias: "-60", StandardTime: change("0", "03:00:00", 5, 10, "Sunday"), DaylightTime: change("x", "02:00:00", 5, 3, "Sunday")},
	}
	for _, z := range bad {
		if loc, err := z.location(2026); err == nil {
			t.Errorf("%+v gave %v, want an error", z, loc)
		}
	}
}
