package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/presencegw/presencegw/internal/config"
	"github.com/presencegw/presencegw/internal/presence"
	"github.com/presencegw/presencegw/ldapmap"
	"github.com/presencegw/presencegw/rules"
)

// Why a mailbox went to its source, most specific first.
const (
	whyMailbox   = "mailbox"
	whyAttribute = "attribute"
	whyDomain    = "domain"
	whyDefault   = "default"
)

// routeRules is calendar.routing with its keys folded to lower case.
type routeRules struct {
	def       string
	values    map[string]string
	domains   map[string]string
	mailboxes map[string]string
}

func newRouteRules(r config.Routing) routeRules {
	fold := func(m map[string]string) map[string]string {
		out := make(map[string]string, len(m))
		for k, v := range m {
			out[strings.ToLower(strings.TrimSpace(k))] = v
		}
		return out
	}
	return routeRules{def: r.Default, values: r.Values, domains: fold(r.Domains), mailboxes: fold(r.Mailboxes)}
}

// decide picks the source of a mailbox whose person's routing attribute
// holds attr ("" when none): the mailbox's own rule, then the
// attribute's value, then its domain, then the default.
func (r routeRules) decide(mailbox, attr string) (source, why string) {
	mb := strings.ToLower(strings.TrimSpace(mailbox))
	if s, ok := r.mailboxes[mb]; ok {
		return s, whyMailbox
	}
	if s, ok := r.values[attr]; ok && attr != "" {
		return s, whyAttribute
	}
	if at := strings.LastIndexByte(mb, '@'); at >= 0 {
		if s, ok := r.domains[mb[at+1:]]; ok {
			return s, whyDomain
		}
	}
	return r.def, whyDefault
}

// decision is one mailbox's route: indexes into routedCalendar.names and
// the why constants, so the table costs a few bytes per mailbox.
type decision struct {
	source uint8
	why    uint8
}

var whys = []string{whyMailbox, whyAttribute, whyDomain, whyDefault}

// routedCalendar is the calendar source the engine polls when calendars
// come from Graph, EWS or ICS: it hands every mailbox to the configured
// source that serves it (presence.RoutedSource), so a hybrid Exchange
// reads on-premises mailboxes with EWS and online ones with Graph, and a
// site can add ICS feeds for people without Exchange. The table of routes
// is rebuilt with every directory index (Update), because the routing
// attribute comes from the directory.
type routedCalendar struct {
	rules   routeRules
	names   []string // configured sources, then config.SourceNone
	sources []presence.CalendarSource
	log     *slog.Logger

	// read marks the sources that have answered for at least one mailbox
	// since start (readiness).
	read []atomic.Bool

	mu    sync.RWMutex
	table map[string]decision
	// counts is the mailboxes per source in table.
	counts []int
	// unmatched counts mailboxes whose attribute value no rule names, per
	// value, for doctor.
	unmatched map[string]int

	calls    *prometheus.CounterVec
	failures *prometheus.CounterVec
	routed   *prometheus.GaugeVec
}

// namedSource is one configured calendar source.
type namedSource struct {
	name string
	src  presence.CalendarSource
}

func newRoutedCalendar(r config.Routing, sources []namedSource, log *slog.Logger) *routedCalendar {
	rc := &routedCalendar{rules: newRouteRules(r), log: log, table: map[string]decision{},
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "presencegw_calendar_source_calls_total",
			Help: "Calls to each calendar source by kind (schedules, autoreplies) and result (ok, error)."}, []string{"source", "kind", "result"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "presencegw_calendar_source_mailbox_errors_total",
			Help: "Mailboxes a calendar source answered with an error of their own (not found, no access, feed failing)."}, []string{"source", "kind"}),
		routed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "presencegw_calendar_routed_mailboxes",
			Help: "Mailboxes each calendar source serves (none: no calendar)."}, []string{"source"}),
	}
	for _, s := range sources {
		rc.names = append(rc.names, s.name)
		rc.sources = append(rc.sources, s.src)
	}
	rc.names = append(rc.names, config.SourceNone)
	rc.sources = append(rc.sources, noCalendar{})
	rc.read = make([]atomic.Bool, len(rc.names))
	return rc
}

func (rc *routedCalendar) index(name string) uint8 {
	if i := slices.Index(rc.names, name); i >= 0 {
		return uint8(i)
	}
	return uint8(len(rc.names) - 1) // validated config: not reached
}

// Update recomputes every mailbox's route from the directory index: call
// it before the engine tracks the index's mailboxes.
func (rc *routedCalendar) Update(ix *ldapmap.Index) { rc.update(ix.Mailboxes(), ix.Routes()) }

// update routes mailboxes, whose people's routing attribute values attrs
// holds.
func (rc *routedCalendar) update(mailboxes []string, attrs map[string]string) {
	table := make(map[string]decision, len(mailboxes))
	unmatched := map[string]int{}
	counts := make([]int, len(rc.names))
	for _, mb := range mailboxes {
		attr := attrs[mb]
		src, why := rc.rules.decide(mb, attr)
		if attr != "" && why != whyMailbox && why != whyAttribute {
			unmatched[attr]++
		}
		d := decision{source: rc.index(src), why: uint8(slices.Index(whys, why))}
		// The engine keys mailboxes in lower case.
		table[strings.ToLower(mb)] = d
		counts[d.source]++
	}
	rc.mu.Lock()
	rc.table, rc.unmatched, rc.counts = table, unmatched, counts
	rc.mu.Unlock()
	for i, n := range counts {
		rc.routed.WithLabelValues(rc.names[i]).Set(float64(n))
	}
}

func (rc *routedCalendar) decision(mailbox string) decision {
	rc.mu.RLock()
	d, ok := rc.table[mailbox]
	if !ok {
		d, ok = rc.table[strings.ToLower(strings.TrimSpace(mailbox))]
	}
	rc.mu.RUnlock()
	if ok {
		return d
	}
	// Not in the directory's index (a one-off refresh): no attribute.
	src, why := rc.rules.decide(mailbox, "")
	return decision{source: rc.index(src), why: uint8(slices.Index(whys, why))}
}

// Route implements presence.RoutedSource.
func (rc *routedCalendar) Route(mailbox string) string { return rc.names[rc.decision(mailbox).source] }

// RouteBatchSizes implements presence.RoutedSource.
func (rc *routedCalendar) RouteBatchSizes(route string) (schedules, autoReplies int) {
	return rc.sources[rc.index(route)].BatchSizes()
}

// BatchSizes implements presence.CalendarSource for callers that do not
// route: the largest batches any source takes (each gets its own size
// within).
func (rc *routedCalendar) BatchSizes() (schedules, autoReplies int) {
	for _, s := range rc.sources[:len(rc.sources)-1] {
		a, b := s.BatchSizes()
		schedules, autoReplies = max(schedules, a), max(autoReplies, b)
	}
	return max(schedules, 1), max(autoReplies, 1)
}

// Schedules implements presence.CalendarSource.
func (rc *routedCalendar) Schedules(ctx context.Context, mailboxes []string, start, end time.Time) ([]rules.MailboxFacts, error) {
	return rc.each(ctx, "schedules", mailboxes, func(s presence.CalendarSource, batch []string) ([]rules.MailboxFacts, error) {
		return s.Schedules(ctx, batch, start, end)
	})
}

// AutoReplies implements presence.CalendarSource.
func (rc *routedCalendar) AutoReplies(ctx context.Context, mailboxes []string) ([]rules.MailboxFacts, error) {
	return rc.each(ctx, "autoreplies", mailboxes, func(s presence.CalendarSource, batch []string) ([]rules.MailboxFacts, error) {
		return s.AutoReplies(ctx, batch)
	})
}

// each groups mailboxes by source and calls each source with its own
// batch size. The engine sends one source's mailboxes at a time; a mixed
// call (another caller) that fails for one source still returns the
// others' facts, the failed source's mailboxes left out (kept until the
// next poll, as after any failed call), and fails only when every source
// failed.
func (rc *routedCalendar) each(ctx context.Context, kind string, mailboxes []string, call func(presence.CalendarSource, []string) ([]rules.MailboxFacts, error)) ([]rules.MailboxFacts, error) {
	groups := make([][]string, len(rc.names))
	for _, mb := range mailboxes {
		i := rc.decision(mb).source
		groups[i] = append(groups[i], mb)
	}
	out := make([]rules.MailboxFacts, 0, len(mailboxes))
	var errs []error
	tried := 0
	for i, g := range groups {
		if len(g) == 0 {
			continue
		}
		tried++
		sched, replies := rc.sources[i].BatchSizes()
		size := sched
		if kind == "autoreplies" {
			size = replies
		}
		for batch := range slices.Chunk(g, max(size, 1)) {
			facts, err := call(rc.sources[i], batch)
			if err != nil {
				rc.calls.WithLabelValues(rc.names[i], kind, "error").Inc()
				errs = append(errs, fmt.Errorf("calendar source %s: %w", rc.names[i], err))
				break
			}
			rc.calls.WithLabelValues(rc.names[i], kind, "ok").Inc()
			for _, f := range facts {
				if f.Err != nil {
					rc.failures.WithLabelValues(rc.names[i], kind).Inc()
				} else if kind == "schedules" {
					rc.read[i].Store(true)
				}
			}
			out = append(out, facts...)
		}
	}
	if len(errs) > 0 && len(errs) == tried {
		return nil, errors.Join(errs...)
	}
	for _, err := range errs {
		if ctx.Err() == nil {
			rc.log.Warn("calendar poll failed", "kind", kind, "err", err)
		}
	}
	return out, nil
}

// RegisterMetrics registers the routing metrics and every source's own.
func (rc *routedCalendar) RegisterMetrics(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{rc.calls, rc.failures, rc.routed} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	for _, s := range rc.sources {
		if m, ok := s.(interface {
			RegisterMetrics(prometheus.Registerer) error
		}); ok {
			if err := m.RegisterMetrics(reg); err != nil {
				return err
			}
		}
	}
	return nil
}

// Unread says, for /readyz, which sources serve mailboxes but have read
// none of their schedules since start (wrong credentials, no permission,
// unreachable), with how many mailboxes they serve. With several sources
// one that never answers must show, even while the others do.
func (rc *routedCalendar) Unread() map[string]int {
	rc.mu.RLock()
	defer rc.mu.RUnlock()
	out := map[string]int{}
	for i, n := range rc.counts {
		if n > 0 && rc.names[i] != config.SourceNone && !rc.read[i].Load() {
			out[rc.names[i]] = n
		}
	}
	return out
}

// routeSummary is what doctor prints: mailboxes per source and why.
type routeSummary struct {
	Source string
	Total  int
	Why    map[string]int
	// Sample is the first mailbox (sorted) the source serves.
	Sample string
}

// Summary counts the mailboxes of the current table per source and
// reason, and returns the attribute values no rule names (those people
// fell through to their domain or the default).
func (rc *routedCalendar) Summary() ([]routeSummary, map[string]int) {
	rc.mu.RLock()
	defer rc.mu.RUnlock()
	out := make([]routeSummary, len(rc.names))
	for i, n := range rc.names {
		out[i] = routeSummary{Source: n, Why: map[string]int{}}
	}
	for mb, d := range rc.table {
		s := &out[d.source]
		s.Total++
		s.Why[whys[d.why]]++
		if s.Sample == "" || mb < s.Sample {
			s.Sample = mb
		}
	}
	unmatched := make(map[string]int, len(rc.unmatched))
	for k, v := range rc.unmatched {
		unmatched[k] = v
	}
	return out, unmatched
}

// source returns the configured source by name (nil for none).
func (rc *routedCalendar) source(name string) presence.CalendarSource {
	i := slices.Index(rc.names, name)
	if i < 0 || name == config.SourceNone {
		return nil
	}
	return rc.sources[i]
}

// noCalendar is the source of mailboxes routed to none: no events, no
// automatic reply, without asking anyone.
type noCalendar struct{}

func (noCalendar) BatchSizes() (int, int) { return 1000, 1000 }

func (noCalendar) Schedules(_ context.Context, mailboxes []string, _, _ time.Time) ([]rules.MailboxFacts, error) {
	out := make([]rules.MailboxFacts, len(mailboxes))
	for i, mb := range mailboxes {
		out[i] = rules.MailboxFacts{Mailbox: mb}
	}
	return out, nil
}

func (noCalendar) AutoReplies(_ context.Context, mailboxes []string) ([]rules.MailboxFacts, error) {
	out := make([]rules.MailboxFacts, len(mailboxes))
	for i, mb := range mailboxes {
		out[i] = rules.MailboxFacts{Mailbox: mb, AutoReply: rules.AutoReply{Status: rules.AutoReplyDisabled}}
	}
	return out, nil
}
