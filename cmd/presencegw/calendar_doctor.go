package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/presencegw/presencegw/internal/config"
	"github.com/presencegw/presencegw/ldapmap"
)

// doctorCalendar reports, for doctor, which mailboxes route to which
// calendar source and why, and reaches every configured source by reading
// one of its mailboxes (a schedule and the automatic reply) the way the
// poller does; false when a source failed.
func (a *app) doctorCalendar(ctx context.Context, out io.Writer) bool {
	rc, _ := a.calendar.(*routedCalendar)
	if rc == nil {
		fmt.Fprintln(out, "calendar: not configured (no graph, ews or ics section: presence comes from chat alone)")
		return true
	}
	synced := true
	for _, h := range a.dir.Health() {
		synced = synced && !h.LastFull.IsZero()
	}
	summary, unmatched := rc.Summary()
	if !synced {
		fmt.Fprintf(out, "calendar routing: a directory has never been synced into %s, so the counts below are partial: run 'presencegw sync -c %s'\n", a.cfg.Store, a.cfg.Path())
	}
	total := 0
	for _, s := range summary {
		total += s.Total
	}
	fmt.Fprintf(out, "calendar routing: %s; %s\n", plural(total, "mailbox", "mailboxes"), describeRules(a.cfg.Calendar.Routing))
	for _, s := range summary {
		if s.Source == config.SourceNone && s.Total == 0 {
			continue
		}
		var why []string
		for _, w := range whys {
			if n := s.Why[w]; n > 0 {
				why = append(why, fmt.Sprintf("%s %d", w, n))
			}
		}
		line := fmt.Sprintf("calendar routing → %s: %s", s.Source, plural(s.Total, "mailbox", "mailboxes"))
		if len(why) > 0 {
			line += " (" + strings.Join(why, ", ") + ")"
		}
		fmt.Fprintln(out, line)
	}
	if len(unmatched) > 0 {
		var l []string
		for _, v := range slices.Sorted(maps.Keys(unmatched)) {
			l = append(l, fmt.Sprintf("%q (%d)", v, unmatched[v]))
		}
		fmt.Fprintf(out, "calendar routing: %s values no rule names, routed by domain or default: %s\n", a.cfg.Calendar.Routing.Attribute, strings.Join(l, ", "))
	}
	ok := true
	for _, s := range summary {
		src := rc.source(s.Source)
		if src == nil {
			continue
		}
		name := "calendar " + s.Source + describeEndpoint(a.cfg, s.Source)
		sample := s.Sample
		if sample == "" && s.Source == config.SourceEWS {
			sample = ewsSender(a.cfg.EWS)
		}
		if sample == "" {
			fmt.Fprintf(out, "%s: not contacted: no mailbox routes to it\n", name)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		now := time.Now()
		facts, err := src.Schedules(cctx, []string{sample}, now, now.Add(time.Hour))
		var replyErr error
		if err == nil {
			rf, rerr := src.AutoReplies(cctx, []string{sample})
			replyErr = rerr
			if replyErr == nil && len(rf) == 1 && rf[0].Err != nil {
				replyErr = rf[0].Err
			}
		}
		cancel()
		switch {
		case err != nil:
			ok = false
			fmt.Fprintf(out, "%s: FAILED: %v\n", name, err)
		case len(facts) != 1:
			ok = false
			fmt.Fprintf(out, "%s: FAILED: asked for %s, got %d answers\n", name, sample, len(facts))
		case facts[0].Err != nil:
			// The source answered: the account works, this mailbox does not.
			fmt.Fprintf(out, "%s: reached, but the schedule of %s: %v\n", name, sample, facts[0].Err)
		case replyErr != nil:
			fmt.Fprintf(out, "%s: reached, schedule of %s read, but its automatic reply: %v\n", name, sample, replyErr)
		default:
			fmt.Fprintf(out, "%s: ok (schedule and automatic reply of %s read, %s in the next hour)\n", name, sample, plural(len(facts[0].Events), "event", "events"))
		}
	}
	return ok
}

// calendarRoute says, for resolve, which calendar source serves the
// person and by which rule; "" without routed sources or a mailbox.
func (a *app) calendarRoute(r ldapmap.Resolution) string {
	rc, _ := a.calendar.(*routedCalendar)
	if rc == nil || r.Person == nil || r.Person.MailboxID == "" {
		return ""
	}
	attr := r.Person.RouteValue()
	src, why := rc.rules.decide(r.Person.MailboxID, attr)
	mb := r.Person.MailboxID
	switch why {
	case whyMailbox:
		return fmt.Sprintf("%s (calendar.routing.mailboxes names %s)", src, mb)
	case whyAttribute:
		return fmt.Sprintf("%s (%s is %q)", src, a.cfg.Calendar.Routing.Attribute, attr)
	case whyDomain:
		return fmt.Sprintf("%s (the domain of %s)", src, mb)
	}
	if attr != "" {
		return fmt.Sprintf("%s (the default: no rule for %s %q)", src, a.cfg.Calendar.Routing.Attribute, attr)
	}
	return src + " (the default)"
}

// describeRules says in one line what the routing rules are.
func describeRules(r config.Routing) string {
	parts := []string{"default " + r.Default}
	if r.Attribute != "" {
		parts = append(parts, fmt.Sprintf("attribute %s (%d values)", r.Attribute, len(r.Values)))
	}
	if n := len(r.Domains); n > 0 {
		parts = append(parts, plural(n, "domain", "domains"))
	}
	if n := len(r.Mailboxes); n > 0 {
		parts = append(parts, plural(n, "single mailbox", "single mailboxes"))
	}
	return strings.Join(parts, ", ")
}

// describeEndpoint names where a source is, without secrets.
func describeEndpoint(cfg *config.Config, source string) string {
	host := func(raw string) string {
		if u, err := url.Parse(raw); err == nil && u.Host != "" {
			return " at " + u.Host
		}
		return ""
	}
	switch source {
	case config.SourceGraph:
		return host(cfg.Graph.BaseURL)
	case config.SourceEWS:
		return host(cfg.EWS.URL)
	}
	return ""
}

// ewsSender is the service account's address, which doctor can ask about
// when no mailbox routes to EWS yet.
func ewsSender(e *config.EWS) string {
	switch {
	case e.SendingAs != "":
		return e.SendingAs
	case e.Impersonate != "":
		return e.Impersonate
	case strings.Contains(e.Username, "@"):
		return e.Username
	}
	return ""
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
