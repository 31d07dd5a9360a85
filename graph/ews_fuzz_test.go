package graph

import (
	"encoding/xml"
	"strings"
	"testing"
	"time"
)

// The fuzz targets run their seed corpus (the documented and recorded
// answers) in every go test; go test -fuzz=FuzzParseAvailability
// ./graph/ searches further. Whatever the input: no panic, a clear error
// or one result per mailbox, and no event that ends before it starts.

var fuzzMailboxes = []string{"user1@example.com", "user2@example.com"}

func seed(f *testing.F, files ...string) {
	for _, name := range files {
		f.Add(fixture(f, name))
	}
	for _, s := range []string{"", "<", "<?xml version=\"1.0\"?>", "<Envelope/>", "<html><body>Sign in</body></html>",
		`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault/></s:Body></s:Envelope>`,
		`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><Other/></s:Body></s:Envelope>`} {
		f.Add([]byte(s))
	}
}

func checkErr(t *testing.T, op string, err error) {
	if msg := err.Error(); !strings.HasPrefix(msg, "ews "+op+": ") {
		t.Fatalf("error %q does not say which operation failed", msg)
	}
}

func FuzzParseAvailability(f *testing.F) {
	seed(f, "availability-success-viewpoint.xml", "availability-error-viewpoint.xml", "availability-notfound-mhewedy.xml",
		"availability-docs-detailedmerged.xml", "fault-serverbusy-exchangelib.xml")
	start := time.Date(2006, 10, 16, 7, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw []byte) {
		for n := 1; n <= len(fuzzMailboxes); n++ {
			facts, err := parseAvailability(raw, fuzzMailboxes[:n], start, time.Hour)
			if err != nil {
				checkErr(t, "GetUserAvailability", err)
				continue
			}
			if len(facts) != n {
				t.Fatalf("%d facts for %d mailboxes", len(facts), n)
			}
			for i, fa := range facts {
				if fa.Mailbox != fuzzMailboxes[i] {
					t.Fatalf("facts[%d] is %s", i, fa.Mailbox)
				}
				for _, e := range fa.Events {
					if e.End.Before(e.Start) {
						t.Fatalf("event ends before it starts: %+v", e)
					}
					if e.Private && (e.Subject != "" || e.Location != "") {
						t.Fatalf("private event with details: %+v", e)
					}
				}
			}
		}
	})
}

func FuzzParseMailTips(f *testing.F) {
	seed(f, "mailtips-docs.xml", "mailtips-exchangelib.xml", "fault-serverbusy-exchangelib.xml")
	f.Fuzz(func(t *testing.T, raw []byte) {
		facts, err := parseMailTips(raw, fuzzMailboxes[:1])
		if err != nil {
			checkErr(t, "GetMailTips", err)
			return
		}
		if len(facts) != 1 || facts[0].Mailbox != fuzzMailboxes[0] {
			t.Fatalf("facts %+v", facts)
		}
		if ar := facts[0].AutoReply; facts[0].Err == nil && ar.Status == "" {
			t.Fatalf("no auto-reply status and no error: %+v", facts[0])
		}
	})
}

func FuzzEWSTimeZone(f *testing.F) {
	f.Add([]byte(`<TimeZone><Bias>480</Bias><StandardTime><Bias>0</Bias><Time>02:00:00</Time><DayOrder>5</DayOrder><Month>10</Month><DayOfWeek>Sunday</DayOfWeek></StandardTime>`+
		`<DaylightTime><Bias>-60</Bias><Time>02:00:00</Time><DayOrder>1</DayOrder><Month>4</Month><DayOfWeek>Sunday</DayOfWeek></DaylightTime></TimeZone>`), 2026)
	f.Add([]byte(`<TimeZone><Bias>-330</Bias><StandardTime><Bias>0</Bias><Time>00:00:00</Time><DayOrder>0</DayOrder><Month>0</Month><DayOfWeek>Sunday</DayOfWeek></StandardTime>`+
		`<DaylightTime><Bias>0</Bias><Time>00:00:00</Time><DayOrder>0</DayOrder><Month>0</Month><DayOfWeek>Sunday</DayOfWeek></DaylightTime></TimeZone>`), 2006)
	f.Fuzz(func(t *testing.T, raw []byte, year int) {
		var z ewsTimeZone
		if xml.Unmarshal(raw, &z) != nil {
			return
		}
		year = 1970 + (year%200+200)%200
		loc, err := z.location(year)
		if err != nil {
			return
		}
		r, _ := z.rule()
		// The location keeps the rule's offsets at least around mid-year.
		for _, at := range []time.Time{time.Date(year, 1, 15, 12, 0, 0, 0, time.UTC), time.Date(year, 7, 15, 12, 0, 0, 0, time.UTC)} {
			if _, off := at.In(loc).Zone(); off != r.offset(at) {
				t.Fatalf("%s at %s: offset %d, rule says %d", loc, at, off, r.offset(at))
			}
		}
	})
}
