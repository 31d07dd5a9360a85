package ics

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-ical"
)

// googleExport makes a feed of about size bytes shaped like a Google
// Calendar export: a VTIMEZONE, events with attendees, folded
// descriptions and alarms, one in five weekly with an EXDATE, and
// exceptions.
func googleExport(size int) []byte {
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR\r\nPRODID:-//Google Inc//Google Calendar 70.9054//EN\r\nVERSION:2.0\r\nCALSCALE:GREGORIAN\r\nMETHOD:PUBLISH\r\nX-WR-CALNAME:alice@example.com\r\nX-WR-TIMEZONE:Europe/Berlin\r\n")
	b.WriteString("BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nX-LIC-LOCATION:Europe/Berlin\r\nBEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\nDTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\nBEGIN:STANDARD\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\nDTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n")
	for i := 0; b.Len() < size; i++ {
		day := time.Date(2022, 1, 3, 8+i%9, 0, 0, 0, time.UTC).AddDate(0, 0, i%1200)
		fmt.Fprintf(&b, "BEGIN:VEVENT\r\nDTSTART;TZID=Europe/Berlin:%s\r\nDTEND;TZID=Europe/Berlin:%s\r\n",
			day.Format("20060102T150405"), day.Add(30*time.Minute).Format("20060102T150405"))
		if i%5 == 0 {
			fmt.Fprintf(&b, "RRULE:FREQ=WEEKLY;BYDAY=%s\r\nEXDATE;TZID=Europe/Berlin:%s\r\n",
				strings.ToUpper(day.Weekday().String()[:2]), day.AddDate(0, 0, 14).Format("20060102T150405"))
		}
		fmt.Fprintf(&b, "DTSTAMP:20240401T101500Z\r\nORGANIZER;CN=alice@example.com:mailto:alice@example.com\r\nUID:%08x-evt@google.com\r\n", i)
		b.WriteString("ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;CN=alice@\r\n example.com;X-NUM-GUESTS=0:mailto:alice@example.com\r\n")
		b.WriteString("ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;CN=bob@\r\n example.com;X-NUM-GUESTS=0:mailto:bob@example.com\r\n")
		b.WriteString("CREATED:20211201T101010Z\r\nDESCRIPTION:Weekly sync about the project\\, with notes\\nand a second line th\r\n at is long enough to be folded by the exporter at seventy-five octets.\r\n")
		fmt.Fprintf(&b, "LAST-MODIFIED:20240101T101010Z\r\nLOCATION:Room %d\\, Building A\r\nSEQUENCE:0\r\nSTATUS:CONFIRMED\r\nSUMMARY:Meeting %d\r\nTRANSP:OPAQUE\r\n", i%40, i)
		b.WriteString("BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:This is an event reminder\r\nTRIGGER:-P0DT0H10M0S\r\nEND:VALARM\r\nEND:VEVENT\r\n")
		if i%5 == 0 && i%3 == 0 {
			moved := day.AddDate(0, 0, 21)
			fmt.Fprintf(&b, "BEGIN:VEVENT\r\nDTSTART;TZID=Europe/Berlin:%s\r\nDTEND;TZID=Europe/Berlin:%s\r\nRECURRENCE-ID;TZID=Europe/Berlin:%s\r\nUID:%08x-evt@google.com\r\nSUMMARY:Meeting %d (moved)\r\nSEQUENCE:1\r\nEND:VEVENT\r\n",
				moved.Add(2*time.Hour).Format("20060102T150405"), moved.Add(150*time.Minute).Format("20060102T150405"), moved.Format("20060102T150405"), i, i)
		}
	}
	b.WriteString("END:VCALENDAR\r\n")
	return []byte(b.String())
}

var oneMB = googleExport(1 << 20)

// reportCPU adds throughput per CPU second (cpu-MB/s) and CPU time per
// operation (cpu-ns/op), measured from c0.
func reportCPU(b *testing.B, c0 time.Duration, bytes int) {
	c := cpuTime() - c0
	if c <= 0 || b.N == 0 {
		return
	}
	if bytes > 0 {
		b.ReportMetric(float64(bytes)*float64(b.N)/c.Seconds()/1e6, "cpu-MB/s")
	}
	b.ReportMetric(float64(c.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkParse1MB is the whole parse of a 1 MB feed: content lines,
// components, times, zones and recurrence rules (goal ≥ 50 MB/s).
func BenchmarkParse1MB(b *testing.B) {
	b.SetBytes(int64(len(oneMB)))
	b.ReportAllocs()
	defer reportCPU(b, cpuTime(), len(oneMB))
	for b.Loop() {
		if _, err := Parse(oneMB, Options{Owner: "alice@example.com"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode1MB is decode alone: text to go-ical's tree.
func BenchmarkDecode1MB(b *testing.B) {
	b.SetBytes(int64(len(oneMB)))
	b.ReportAllocs()
	defer reportCPU(b, cpuTime(), len(oneMB))
	for b.Loop() {
		if _, err := decode(oneMB); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGoICalDecoder1MB is go-ical's own Decoder on the same feed,
// for comparison.
func BenchmarkGoICalDecoder1MB(b *testing.B) {
	b.SetBytes(int64(len(oneMB)))
	b.ReportAllocs()
	defer reportCPU(b, cpuTime(), len(oneMB))
	for b.Loop() {
		if _, err := ical.NewDecoder(bytes.NewReader(oneMB)).Decode(); err != nil {
			b.Fatal(err)
		}
	}
}

func benchSeries(b *testing.B, feed string, start, end time.Time, want int) {
	cal, err := Parse([]byte(feed), Options{})
	if err != nil || len(cal.Problems) > 0 {
		b.Fatal(err, cal.Problems)
	}
	if n := len(cal.Events(start, end)); n != want {
		b.Fatalf("%d occurrences, want %d", n, want)
	}
	b.ReportAllocs()
	defer reportCPU(b, cpuTime(), 0)
	for b.Loop() {
		cal.Events(start, end)
	}
}

const seriesFeed = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:s\r\nDTSTART;TZID=Europe/Berlin:%s\r\nDTEND;TZID=Europe/Berlin:%s\r\nRRULE:%s\r\n%sEND:VEVENT\r\n%sEND:VCALENDAR\r\n"

// BenchmarkExpandYearWeekly expands a year of a weekly series that began
// three years earlier, with EXDATEs and a moved occurrence (goal ≤ 1 ms
// per series).
func BenchmarkExpandYearWeekly(b *testing.B) {
	feed := fmt.Sprintf(seriesFeed, "20210104T090000", "20210104T093000", "FREQ=WEEKLY;BYDAY=MO,TH",
		"EXDATE;TZID=Europe/Berlin:20240108T090000,20240111T090000\r\n",
		"BEGIN:VEVENT\r\nUID:s\r\nRECURRENCE-ID;TZID=Europe/Berlin:20240311T090000\r\nDTSTART;TZID=Europe/Berlin:20240312T140000\r\nDTEND;TZID=Europe/Berlin:20240312T143000\r\nEND:VEVENT\r\n")
	benchSeries(b, feed, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), 103)
}

// BenchmarkExpandYearDaily expands a year of a daily series that began
// in 2015 (DTSTART moves forward by whole days, not 3,000 iterations).
func BenchmarkExpandYearDaily(b *testing.B) {
	feed := fmt.Sprintf(seriesFeed, "20150105T083000", "20150105T084500", "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR", "", "")
	benchSeries(b, feed, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), 262)
}

// BenchmarkExpandYearMonthly expands a year of a monthly series (no
// shortcut: rrule-go iterates from DTSTART, months since 2015).
func BenchmarkExpandYearMonthly(b *testing.B) {
	feed := fmt.Sprintf(seriesFeed, "20150102T100000", "20150102T110000", "FREQ=MONTHLY;BYDAY=1FR", "", "")
	benchSeries(b, feed, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), 12)
}

// BenchmarkExpandDay1MB expands the 1 MB feed's events of one working
// day, what a poll asks for.
func BenchmarkExpandDay1MB(b *testing.B) {
	cal, err := Parse(oneMB, Options{})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Date(2024, 3, 12, 6, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	defer reportCPU(b, cpuTime(), 0)
	for b.Loop() {
		cal.Events(start, start.Add(9*time.Hour))
	}
}
