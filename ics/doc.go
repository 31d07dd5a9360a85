// Package ics is the calendar source for iCalendar feeds (RFC 5545): one
// feed per person, from Nextcloud (public calendar "?export"), Google
// (the "secret address in iCal format"), Fastmail, Outlook/Exchange
// published calendars or any CalDAV server's export. It implements the
// engine's CalendarSource (internal/presence), so a site without Exchange,
// or part of one, gets the same presence as Graph gives.
//
// # Fetching
//
// Each mailbox's feed URL comes from Config.URL (URLTemplate and URLMap
// build one). Feeds are fetched with conditional requests (If-None-Match
// with the last ETag, If-Modified-Since with the last Last-Modified); a
// 304, or a 200 with a byte-identical body, reuses the parsed calendar.
// A feed over Config.MaxSize (10 MiB) or slower than Config.Timeout
// fails; every failure is the mailbox's own (MailboxFacts.Err) and never
// names the feed's path, which is often its secret. Requests in flight
// are bounded across calls (Config.Concurrency).
//
// # Meaning
//
// An event shows busy unless TRANSP:TRANSPARENT (free) or
// STATUS:TENTATIVE (tentative); Outlook's X-MICROSOFT-CDO-BUSYSTATUS, or
// failing it X-MICROSOFT-CDO-INTENDEDSTATUS (FREE, TENTATIVE, BUSY, OOF,
// WORKINGELSEWHERE), decides where present; when the owner is an
// attendee, a declined invitation shows free and a tentative answer
// tentative. STATUS:CANCELLED events (and cancelled occurrences) come
// back Cancelled and free. CLASS:PRIVATE and CONFIDENTIAL events are
// Private, with no subject or location. DATE values are all-day events,
// from midnight to midnight in the person's zone (Config.Location, else
// the feed's X-WR-TIMEZONE, else UTC), where floating times are read too.
//
// iCalendar has no out-of-office setting: AutoReplies reports automatic
// replies disabled for every mailbox, and out of office comes from events
// marked OOF (Outlook's busy status), which the rules treat like Graph's.
//
// Recurrence is expanded per window (see Calendar.Events): RRULE, RDATE
// (dates, date-times and periods), EXDATE, exceptions by RECURRENCE-ID
// wherever they moved, RANGE=THISANDFUTURE exceptions shifting and
// restyling later occurrences (in wall-clock time). Wall times that a DST
// change skips or repeats are read as RFC 5545 §3.3.5 says (the offset
// before the gap; the first of the two). Not supported: sub-daily rules
// (FREQ=HOURLY and finer: the event is skipped as a problem, since
// rrule-go can loop forever on some) and the deprecated EXRULE (ignored).
// A rule that never occurs (BYMONTH=2;BYMONTHDAY=30) leaves its DTSTART;
// finding that out costs rrule-go a scan to year 9999, so such checks are
// bounded per calendar (probeBudget). Time zones: see zone.go.
//
// # Library
//
// The data model and value accessors are github.com/emersion/go-ical
// (ical.Calendar, Component, Prop, text unescaping) and recurrence is
// github.com/teambition/rrule-go, which go-ical is built on. The choice,
// against github.com/arran4/golang-ical:
//
//   - Recurrence: go-ical hands RRULE to rrule-go, a port of
//     python-dateutil's rrule, the reference most iCalendar code is
//     checked against (BYSETPOS, negative BYDAY, WKST, leap days, wall
//     clock across DST when DTSTART carries a real zone). golang-ical has
//     no recurrence at all; it would need rrule-go anyway.
//   - Neither library reads VTIMEZONE (both call time.LoadLocation on the
//     TZID, which fails for Outlook's Windows names) and neither applies
//     RECURRENCE-ID; both are done here, so the libraries' gaps are the
//     same and go-ical's model is the smaller one to build on.
//   - go-ical's RecurrenceSet is not used: it adds EXDATEs as RDATEs and
//     reads no lists. The rules are built here, one per RRULE, and
//     rrule-go's panics on odd input are caught (guard).
//   - Maintenance: go-ical (Simon Ser, the base of go-webdav's CalDAV) has
//     no tagged release, its last commit is of March 2025; rrule-go's last
//     release is of January 2023 and it is still the Go implementation
//     others use. golang-ical is tagged (v0.3.4, March 2026) and busier,
//     but parses with regular expressions: about 9 MB/s on a 1 MB Google
//     export, go-ical's Decoder about 27–44 MB/s (per CPU second), both
//     below the 50 MB/s this package aims at.
//
// # Parsing speed
//
// go-ical's Decoder spends its time allocating: each parameter value is
// built by string concatenation a byte at a time, every property gets a
// parameter map, lines are read rune by rune through a bufio.Reader. So
// parsing uses decode.go, which builds the same tree (FuzzDecodeMatchesGoICal
// compares the two) from one string, sizes every map once and hands out
// property slices from slabs, and names the line of malformed input where
// go-ical's Decoder panics on some (a parameter value followed by junk, a
// line ending in the parameters) and names no line. Parse also keeps only
// what it reads: events and time zones, and of an event the properties
// below (no VALARM, DESCRIPTION or other people's ATTENDEE lines).
// BenchmarkParse1MB and its neighbours measure it; on this project's
// 2-core machine, per CPU second: go-ical's Decoder 44 MB/s, decode 100
// MB/s, Parse (decode with the filter, zones, rules, series) 80 MB/s; a
// year of a weekly, daily or monthly series that began years earlier
// expands in 0.1–0.2 ms (rules start near the window, see rule.from).
package ics
