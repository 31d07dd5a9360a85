package ics

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-ical"
)

// seeds are the golden feeds and malformed snippets; go test runs them
// as ordinary tests, go test -fuzz starts from them.
func seeds(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.ics"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range malformed {
		f.Add([]byte(s.in))
	}
	f.Add([]byte("BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:20240301T100000Z\nRRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30\nEND:VEVENT\nEND:VCALENDAR\n"))
	f.Add([]byte("BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;TZID=X:20240301T100000\nEND:VEVENT\nBEGIN:VTIMEZONE\nTZID:X\nBEGIN:STANDARD\nDTSTART:19700101T000000\nTZOFFSETFROM:+0100\nTZOFFSETTO:+0100\nEND:STANDARD\nEND:VTIMEZONE\nEND:VCALENDAR\n"))
	f.Add([]byte("X;A=\"b\"c:v\n"))
	f.Add([]byte("BEGIN:VCALENDAR\nX;A=b\nEND:VCALENDAR\n"))
}

// FuzzParse: whatever the input, Parse returns a calendar or an error
// naming a line, never panics, and expansion gives well-formed events.
func FuzzParse(f *testing.F) {
	seeds(f)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		f.Fatal(err)
	}
	windows := [][2]time.Time{
		{time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC), time.Date(2026, 11, 24, 17, 0, 0, 0, time.UTC)},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cal, err := Parse(data, Options{Owner: "alice@example.com", Location: berlin})
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Line < 1 || !strings.Contains(err.Error(), fmt.Sprintf("line %d", se.Line)) {
				t.Fatalf("error %v (%T) does not name a line", err, err)
			}
			return
		}
		for _, p := range cal.Problems {
			if !strings.Contains(p.Error(), "line ") {
				t.Errorf("problem %q does not name a line", p)
			}
		}
		for _, w := range windows {
			events := cal.Events(w[0], w[1])
			for i, e := range events {
				if e.End.Before(e.Start) {
					t.Fatalf("event ends before it starts: %+v", e)
				}
				if !e.Start.Before(w[1]) || e.End.Before(w[0]) {
					t.Fatalf("event %+v outside the window %v", e, w)
				}
				if i > 0 && e.Start.Before(events[i-1].Start) {
					t.Fatal("events not sorted")
				}
			}
		}
	})
}

// FuzzDecodeMatchesGoICal: where go-ical's own Decoder reads an input
// (without panicking), decode reads it to the same tree.
func FuzzDecodeMatchesGoICal(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		want, err := libDecode(data)
		got, gotErr := decode(data)
		if err != nil {
			return // go-ical refuses it; decode may be more lenient
		}
		if n := bytes.Count(bytes.ToUpper(data), []byte("VCALENDAR")); n != 2 {
			return // go-ical stops after the first VCALENDAR; decode merges the next
		}
		if gotErr != nil {
			if strings.Contains(gotErr.Error(), "nested more than") || strings.Contains(gotErr.Error(), "after END:VCALENDAR") {
				return // decode bounds nesting and refuses trailing junk, go-ical does not
			}
			t.Fatalf("go-ical reads it, decode says %v", gotErr)
		}
		if d := diffComponent(got.Component, want.Component, "VCALENDAR"); d != "" {
			t.Fatal(d)
		}
	})
}

func libDecode(data []byte) (cal *ical.Calendar, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("go-ical panicked: %v", r)
		}
	}()
	return ical.NewDecoder(bytes.NewReader(data)).Decode()
}

func diffComponent(got, want *ical.Component, path string) string {
	if got.Name != want.Name {
		return fmt.Sprintf("%s: name %q, go-ical %q", path, got.Name, want.Name)
	}
	if len(got.Props) != len(want.Props) {
		return fmt.Sprintf("%s: %d property names, go-ical %d", path, len(got.Props), len(want.Props))
	}
	for name, wps := range want.Props {
		gps := got.Props[name]
		if len(gps) != len(wps) {
			return fmt.Sprintf("%s: %d %s, go-ical %d", path, len(gps), name, len(wps))
		}
		for i := range wps {
			g, w := gps[i], wps[i]
			if g.Name != w.Name || g.Value != w.Value || len(g.Params) != len(w.Params) {
				return fmt.Sprintf("%s: %s #%d = %+v, go-ical %+v", path, name, i, g, w)
			}
			for k, wv := range w.Params {
				if fmt.Sprint(g.Params[k]) != fmt.Sprint(wv) {
					return fmt.Sprintf("%s: %s #%d parameter %s = %q, go-ical %q", path, name, i, k, g.Params[k], wv)
				}
			}
		}
	}
	if len(got.Children) != len(want.Children) {
		return fmt.Sprintf("%s: %d children, go-ical %d", path, len(got.Children), len(want.Children))
	}
	for i := range want.Children {
		if d := diffComponent(got.Children[i], want.Children[i], path+"/"+want.Children[i].Name); d != "" {
			return d
		}
	}
	return ""
}

// malformed inputs and the line their error must name.
var malformed = []struct {
	name, in string
	line     int
	msg      string
}{
	{"empty", "", 1, "not an iCalendar file"},
	{"html", "<!DOCTYPE html>\n<html><body>Login</body></html>\n", 1, "no colon"},
	{"no calendar", "BEGIN:VEVENT\nEND:VEVENT\n", 1, "expected BEGIN:VCALENDAR"},
	{"property first", "VERSION:2.0\nBEGIN:VCALENDAR\nEND:VCALENDAR\n", 1, "expected BEGIN:VCALENDAR"},
	{"no colon", "BEGIN:VCALENDAR\nVERSION:2.0\nSUMMARY Lunch\nEND:VCALENDAR\n", 3, "no colon"},
	{"empty name", "BEGIN:VCALENDAR\n:value\nEND:VCALENDAR\n", 2, "empty property name"},
	{"param without =", "BEGIN:VCALENDAR\nDTSTART;TZID:20240101\nEND:VCALENDAR\n", 2, "without '='"},
	{"param junk after quote", "BEGIN:VCALENDAR\r\nX;A=\"b\"c:v\r\nEND:VCALENDAR\r\n", 2, "unexpected 'c'"},
	{"line ends in params", "BEGIN:VCALENDAR\nX;A=b\nEND:VCALENDAR\n", 2, "line ends in parameter A"},
	{"unterminated quote", "BEGIN:VCALENDAR\nX;A=\"b:v\nEND:VCALENDAR\n", 2, "unterminated quoted"},
	{"stray quote", "BEGIN:VCALENDAR\nX;A=b\"c:v\nEND:VCALENDAR\n", 2, "stray double quote"},
	{"wrong END", "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:20240101\nEND:VTODO\nEND:VCALENDAR\n", 4, "BEGIN:VEVENT of line 2 is still open"},
	{"END without BEGIN", "END:VEVENT\n", 1, "without BEGIN"},
	{"never closed", "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:20240101\n", 3, "BEGIN:VEVENT of line 2 is never closed"},
	{"after the end", "BEGIN:VCALENDAR\nEND:VCALENDAR\nGARBAGE:1\n", 3, "after END:VCALENDAR"},
	{"folded error line", "BEGIN:VCALENDAR\nVERSION:2.0\nSUMMARY;X=\"a\n b\"c:d\nEND:VCALENDAR\n", 3, "unexpected 'c'"},
	{"too deep", "BEGIN:VCALENDAR\n" + strings.Repeat("BEGIN:X\n", 20), 17, "nested more than"},
}

// decode reports every malformed line; Parse skips lines it does not
// read (see filter), so it is checked on the same inputs only for naming
// a line when it fails.
func TestSyntaxErrorsNameTheLine(t *testing.T) {
	for _, tc := range malformed {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse([]byte(tc.in), Options{}); err != nil && !strings.HasPrefix(err.Error(), "ics: line ") {
				t.Errorf("Parse error %q does not name a line", err)
			}
			_, err := decode([]byte(tc.in))
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse = %v, want a *SyntaxError", err)
			}
			if se.Line != tc.line || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q, want line %d and %q", err, tc.line, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("ics: line %d: ", tc.line)) {
				t.Errorf("error %q does not start with the line", err)
			}
		})
	}
}

// go-ical's own Decoder panics on two of the malformed inputs; decode
// reports them (the reason it is not used as is).
func TestGoICalDecoderPanics(t *testing.T) {
	for _, in := range []string{"BEGIN:VCALENDAR\r\nX;A=\"b\"c:v\r\nEND:VCALENDAR\r\n", "BEGIN:VCALENDAR\nX;A=b\nEND:VCALENDAR\n"} {
		if _, err := libDecode([]byte(in)); err == nil || !strings.Contains(err.Error(), "panicked") {
			t.Errorf("go-ical on %q: %v; if it no longer panics, update the package doc", in, err)
		}
	}
}

func TestDecodeLenient(t *testing.T) {
	in := "\uFEFFBEGIN:VCALENDAR\n\nVERSION:2.0\r\nBEGIN:VEVENT\nsummary;language=de:Hallo\n  Welt\n\tnoch\nEND:vevent\nEND:VCALENDAR\nBEGIN:VCALENDAR\nVERSION:9\nX-MORE:1\nBEGIN:VEVENT\nSUMMARY:Zwei\nEND:VEVENT\nEND:VCALENDAR\n\n"
	cal, err := decode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := cal.Props.Get("VERSION").Value; got != "2.0" {
		t.Errorf("VERSION = %q, the first calendar's wins", got)
	}
	if cal.Props.Get("X-MORE") == nil {
		t.Error("a second calendar's new property is lost")
	}
	if len(cal.Children) != 2 {
		t.Fatalf("%d events, want both calendars' 2", len(cal.Children))
	}
	p := cal.Children[0].Props.Get("SUMMARY")
	if p == nil || p.Value != "Hallo Weltnoch" || p.Params.Get("LANGUAGE") != "de" {
		t.Errorf("SUMMARY = %+v, want the folded value joined and names upper-cased", p)
	}
}
