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
// wherever they moved, RANGE=THISANDFUTURE exceptions shifting later
// occurrences. Not supported, and documented where they are refused:
// sub-daily rules (FREQ=HOURLY and finer: a skipped event each) and the
// deprecated EXRULE (ignored). Time zones: see zone.go.
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
//     reads no lists. The rules are built here, one per RRULE.
//   - Maintenance: go-ical (Simon Ser, used by go-webdav's CalDAV) has no
//     tagged release, its last commit is of March 2025; golang-ical is
//     tagged (v0.3.4, March 2026) and busier. golang-ical parses with
//     regular expressions at 9 MB/s on a 1 MB Google export, go-ical at
//     27 MB/s; both are below the 50 MB/s this package aims at.
//
// Parsing therefore does not use go-ical's Decoder but decode.go, which
// builds the same tree (a fuzz test compares the two) several times
// faster (BenchmarkDecode1MB against BenchmarkGoICalDecoder1MB) and answers malformed input with the line, where go-ical's Decoder
// panics on some (a parameter value followed by junk, a line ending in
// the parameters) and names no line.
package ics
