package ics

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/presencegw/presencegw/rules"
)

// Config configures the ICS source.
type Config struct {
	// URL gives a mailbox's calendar feed (see URLTemplate and URLMap);
	// false means the mailbox has none (its facts carry ErrNoURL).
	// webcal:// and webcals:// are read as http:// and https://. Basic
	// credentials may be put in the URL (https://user:pass@host/…).
	URL func(mailbox string) (string, bool)
	// Location is the person's time zone, for floating times and all-day
	// dates; nil (or a nil answer) uses the feed's X-WR-TIMEZONE, else
	// UTC. Optional.
	Location func(mailbox string) *time.Location
	// LoadZone resolves TZIDs that are neither IANA names nor defined in
	// the feed (graph.LoadZone knows the Windows names). Optional.
	LoadZone func(tzid string) (*time.Location, error)
	// MaxSize bounds a feed's size. Default 10 MiB.
	MaxSize int64
	// Timeout bounds one request, body included. Default 30s.
	Timeout time.Duration
	// Concurrency bounds requests in flight across all calls. Default 8.
	Concurrency int
	// Batch is how many mailboxes one Schedules call takes. Default 10.
	Batch int
	// MinInterval skips the request when the mailbox's feed was read this
	// recently (feeds that change rarely, or servers that ask for it).
	// Default 0: every poll asks, conditionally.
	MinInterval time.Duration
	// Transport is the HTTP transport. Default http.DefaultTransport.
	Transport http.RoundTripper
	// UserAgent of requests. Default "presencegw-ics/1".
	UserAgent string
}

// Errors of a mailbox, in MailboxFacts.Err.
var (
	// ErrNoURL: the mailbox has no calendar feed configured.
	ErrNoURL = errors.New("ics: no calendar URL for the mailbox")
	// ErrTooLarge: the feed is larger than Config.MaxSize.
	ErrTooLarge = errors.New("ics: calendar feed too large")
)

// StatusError is a feed request answered with an HTTP error status.
type StatusError struct {
	Status int
	URL    string // redacted: scheme and host only
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("ics: %s: HTTP %d %s", e.URL, e.Status, http.StatusText(e.Status))
}

// Source reads calendars from per-person iCalendar feeds (Nextcloud,
// Google's secret address, Fastmail, Outlook's published calendars, any
// CalDAV server's export) and implements the engine's CalendarSource.
type Source struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client
	sem    chan struct{}
	seed   maphash.Seed
	now    func() time.Time

	mu        sync.Mutex
	cache     map[string]*entry
	lastSweep time.Time

	statsMu sync.Mutex
	stats   Stats
}

// entry is the cache of one mailbox's feed.
type entry struct {
	mu            sync.Mutex // held during a fetch: one request per feed at a time
	etag, lastMod string
	hash          uint64
	cal           *Calendar
	checked       time.Time // last answer from the server
	used          time.Time
}

// Stats are the source's counters.
type Stats struct {
	// Requests by result: "ok" (a new body, parsed), "unchanged" (200
	// with the body of last time), "not_modified" (304), "skipped"
	// (MinInterval), "http_4xx", "http_5xx", "too_large", "invalid"
	// (not iCalendar), "network" (no answer, timeout).
	Requests map[string]int64
	// Bytes read from feed bodies.
	Bytes int64
	// NotModified counts 304 answers (also in Requests).
	NotModified int64
	// Skipped counts events skipped in parsed feeds (Calendar.Problems).
	Skipped int64
}

// New builds a Source. It does not contact any server.
func New(cfg Config, log *slog.Logger) (*Source, error) {
	if cfg.URL == nil {
		return nil, errors.New("ics: a URL function is required")
	}
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = 10 << 20
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 10
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "presencegw-ics/1"
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := &http.Client{
		Transport: cfg.Transport,
		Timeout:   cfg.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("more than 5 redirects")
			}
			return nil
		},
	}
	return &Source{cfg: cfg, log: log, client: client, sem: make(chan struct{}, cfg.Concurrency),
		seed: maphash.MakeSeed(), now: time.Now, cache: map[string]*entry{},
		stats: Stats{Requests: map[string]int64{}}}, nil
}

// BatchSizes: every feed is a request of its own, so a batch only sets
// how finely the engine spreads the requests over its poll interval;
// Config.Batch (10) with Config.Concurrency (8) requests in flight keeps
// the spread fine and a batch quick. Automatic replies cost nothing (see
// AutoReplies), so their batches are large.
func (s *Source) BatchSizes() (schedules, autoReplies int) {
	return s.cfg.Batch, 1000
}

// Schedules reads each mailbox's feed (conditionally: a 304 or an
// unchanged body reuses the parsed calendar) and returns its events in
// [start, end). A mailbox whose feed fails has Err set; the call fails
// only when ctx ends.
func (s *Source) Schedules(ctx context.Context, mailboxes []string, start, end time.Time) ([]rules.MailboxFacts, error) {
	out := make([]rules.MailboxFacts, len(mailboxes))
	var wg sync.WaitGroup
	for i, mb := range mailboxes {
		out[i].Mailbox = mb
		wg.Add(1)
		go func() {
			defer wg.Done()
			cal, err := s.calendar(ctx, mb)
			if err != nil {
				out[i].Err = err
				return
			}
			out[i].Events = cal.Events(start, end)
			out[i].Location = cal.Zone
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.sweep()
	return out, nil
}

// AutoReplies: iCalendar has no out-of-office setting, so every mailbox
// reports automatic replies disabled. Out of office comes from the
// calendar itself: events with X-MICROSOFT-CDO-BUSYSTATUS:OOF.
func (s *Source) AutoReplies(ctx context.Context, mailboxes []string) ([]rules.MailboxFacts, error) {
	out := make([]rules.MailboxFacts, len(mailboxes))
	for i, mb := range mailboxes {
		out[i] = rules.MailboxFacts{Mailbox: mb, AutoReply: rules.AutoReply{Status: rules.AutoReplyDisabled}}
	}
	return out, nil
}

// Stats returns a copy of the counters.
func (s *Source) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	st := s.stats
	st.Requests = make(map[string]int64, len(s.stats.Requests))
	for k, v := range s.stats.Requests {
		st.Requests[k] = v
	}
	return st
}

func (s *Source) count(result string, bytes int64, skipped int) {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	s.stats.Requests[result]++
	s.stats.Bytes += bytes
	s.stats.Skipped += int64(skipped)
	if result == "not_modified" {
		s.stats.NotModified++
	}
}

// feedURL is the mailbox's feed URL, checked and normalised.
func (s *Source) feedURL(mailbox string) (*url.URL, error) {
	raw, ok := s.cfg.URL(mailbox)
	if !ok || strings.TrimSpace(raw) == "" {
		return nil, fmt.Errorf("%w %s", ErrNoURL, mailbox)
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("ics: calendar URL of %s does not parse", mailbox)
	}
	switch strings.ToLower(u.Scheme) {
	case "webcal":
		u.Scheme = "http"
	case "webcals":
		u.Scheme = "https"
	case "http", "https":
	default:
		return nil, fmt.Errorf("ics: calendar URL of %s: scheme %q is not http or https", mailbox, u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("ics: calendar URL of %s has no host", mailbox)
	}
	return u, nil
}

// redact keeps what an operator may see of a feed URL: a feed's path is
// often its secret (Google's "secret address").
func redact(u *url.URL) string { return u.Scheme + "://" + u.Host + "/…" }

func (s *Source) entry(key string) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.cache[key]
	if e == nil {
		e = &entry{}
		s.cache[key] = e
	}
	e.used = s.now()
	return e
}

// sweep forgets feeds no one asked for in a day (people who left).
func (s *Source) sweep() {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.lastSweep) < time.Hour {
		return
	}
	s.lastSweep = now
	for k, e := range s.cache {
		if now.Sub(e.used) > 24*time.Hour {
			delete(s.cache, k)
		}
	}
}

// calendar returns the mailbox's parsed feed, fetched when needed.
func (s *Source) calendar(ctx context.Context, mailbox string) (*Calendar, error) {
	u, err := s.feedURL(mailbox)
	if err != nil {
		return nil, err
	}
	e := s.entry(u.String() + "\x00" + strings.ToLower(mailbox))
	e.mu.Lock()
	defer e.mu.Unlock()
	if s.cfg.MinInterval > 0 && e.cal != nil && s.now().Sub(e.checked) < s.cfg.MinInterval {
		s.count("skipped", 0, 0)
		return e.cal, nil
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.sem }()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("ics: %s: %v", redact(u), err)
	}
	req.Header.Set("Accept", "text/calendar, */*;q=0.5")
	req.Header.Set("User-Agent", s.cfg.UserAgent)
	if e.cal != nil {
		if e.etag != "" {
			req.Header.Set("If-None-Match", e.etag)
		}
		if e.lastMod != "" {
			req.Header.Set("If-Modified-Since", e.lastMod)
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.count("network", 0, 0)
		return nil, fmt.Errorf("ics: %s: %w", redact(u), unwrapURLError(err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && e.cal != nil:
		s.count("not_modified", 0, 0)
		e.checked = s.now()
		return e.cal, nil
	case resp.StatusCode != http.StatusOK:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		s.count(fmt.Sprintf("http_%dxx", resp.StatusCode/100), 0, 0)
		return nil, &StatusError{Status: resp.StatusCode, URL: redact(u)}
	}
	if resp.ContentLength > s.cfg.MaxSize {
		s.count("too_large", 0, 0)
		return nil, fmt.Errorf("%w: %s: %d bytes, the limit is %d", ErrTooLarge, redact(u), resp.ContentLength, s.cfg.MaxSize)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.cfg.MaxSize+1))
	if err != nil {
		s.count("network", int64(len(body)), 0)
		return nil, fmt.Errorf("ics: %s: reading the feed: %w", redact(u), unwrapURLError(err))
	}
	if int64(len(body)) > s.cfg.MaxSize {
		s.count("too_large", int64(len(body)), 0)
		return nil, fmt.Errorf("%w: %s: over %d bytes", ErrTooLarge, redact(u), s.cfg.MaxSize)
	}
	e.checked = s.now()
	h := maphash.Bytes(s.seed, body)
	if e.cal != nil && h == e.hash {
		// The server does not do conditional requests, but nothing changed.
		s.count("unchanged", int64(len(body)), 0)
		e.etag, e.lastMod = resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
		return e.cal, nil
	}
	var loc *time.Location
	if s.cfg.Location != nil {
		loc = s.cfg.Location(mailbox)
	}
	cal, err := Parse(body, Options{Location: loc, Owner: mailbox, LoadZone: s.cfg.LoadZone})
	if err != nil {
		s.count("invalid", int64(len(body)), 0)
		e.cal, e.etag, e.lastMod, e.hash = nil, "", "", 0
		if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/html" {
			return nil, fmt.Errorf("ics: %s: got an HTML page, not a calendar (a login page, a wrong URL?): %w", redact(u), err)
		}
		return nil, fmt.Errorf("ics: %s: %w", redact(u), err)
	}
	cal.prune(s.now().Add(-7 * 24 * time.Hour))
	s.count("ok", int64(len(body)), len(cal.Problems))
	if len(cal.Problems) > 0 {
		s.log.Warn("calendar feed: events skipped", "mailbox", mailbox, "feed", redact(u),
			"skipped", len(cal.Problems), "first", cal.Problems[0].Error())
	}
	e.cal, e.hash = cal, h
	e.etag, e.lastMod = resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	return cal, nil
}

// unwrapURLError drops the URL net/http puts in its errors: it may hold
// the feed's secret.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
