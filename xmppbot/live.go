package xmppbot

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"mellium.im/xmlstream"

	"github.com/presencegw/presencegw/rules"
)

// live tracks every local user's online resources from the XEP-0356
// presence feed and hands each person's to the engine, so lookups answer
// with what people set themselves. The feed carries the un-overlaid
// presence (presence = managed_entity), so the gateway's own calendar
// states never come back as the person's choice.
type live struct {
	bot *Bot

	mu     sync.Mutex
	people map[string]*onlinePerson // by lower-case bare JID
	// feed is true while connected with a presence permission.
	feed bool
	// lostAt is when the feed was lost; people stay believed for
	// Config.Grace after it.
	lostAt time.Time
	// known are the mailboxes told to the engine as Known (online or
	// offline), to withdraw when the feed is gone for good.
	known map[string]bool
	// confirm holds, after a reconnect to a server that sends a snapshot,
	// the people not yet seen again; whoever is still in it when the
	// snapshot has settled went offline meanwhile.
	confirm map[string]bool
}

// onlinePerson is one person's online resources.
type onlinePerson struct {
	mailbox   string
	resources []rules.Resource
}

func newLive(b *Bot) *live {
	return &live{bot: b, people: map[string]*onlinePerson{}, known: map[string]bool{}}
}

// presenceStanza is the part of a presence the gateway uses.
type presenceStanza struct {
	From     string `xml:"from,attr"`
	Type     string `xml:"type,attr"`
	Show     string `xml:"show"`
	Status   string `xml:"status"`
	Priority string `xml:"priority"`
}

// handle takes one presence from the feed.
func (l *live) handle(r xml.TokenReader, start *xml.StartElement) error {
	var p presenceStanza
	if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r)).Decode(&p); err != nil {
		l.bot.met.presences.WithLabelValues("malformed").Inc()
		return nil
	}
	l.apply(p)
	return nil
}

// apply records one presence; the outcome is counted by kind.
func (l *live) apply(p presenceStanza) {
	bare, resource, ok := strings.Cut(p.From, "/")
	local, domain, hasLocal := strings.Cut(bare, "@")
	if !ok || !hasLocal || local == "" || resource == "" {
		l.bot.met.presences.WithLabelValues("ignored").Inc()
		return
	}
	if !l.bot.hosts[strings.ToLower(domain)] {
		l.bot.met.presences.WithLabelValues("ignored").Inc()
		return
	}
	var res *rules.Resource
	switch p.Type {
	case "":
		prio, _ := strconv.Atoi(strings.TrimSpace(p.Priority))
		show := rules.Show(strings.TrimSpace(p.Show))
		switch show {
		case rules.ShowAvailable, rules.ShowChat, rules.ShowAway, rules.ShowXA, rules.ShowDND:
		default:
			show = rules.ShowAvailable // RFC 6121 §4.7.2.1: unknown show is available
		}
		res = &rules.Resource{Name: resource, Show: show, Status: p.Status, Priority: prio, ByGateway: l.bot.calendarSession(bare, resource)}
	case "unavailable":
	default:
		l.bot.met.presences.WithLabelValues("ignored").Inc()
		return
	}
	key := strings.ToLower(bare)

	l.mu.Lock()
	person := l.people[key]
	if person == nil {
		if res == nil {
			l.mu.Unlock()
			l.bot.met.presences.WithLabelValues("ignored").Inc()
			return
		}
		mb, found := l.bot.dir.MailboxOf(key)
		if !found {
			l.mu.Unlock()
			l.bot.met.presences.WithLabelValues("unknown_person").Inc()
			return
		}
		person = &onlinePerson{mailbox: mb}
		l.people[key] = person
	}
	delete(l.confirm, key)
	i := 0
	for ; i < len(person.resources) && person.resources[i].Name != resource; i++ {
	}
	switch {
	case res == nil && i < len(person.resources):
		person.resources = append(person.resources[:i], person.resources[i+1:]...)
	case res != nil && i < len(person.resources):
		person.resources[i] = *res
	case res != nil:
		person.resources = append(person.resources, *res)
	}
	chat := rules.Chat{Known: true, Resources: append([]rules.Resource(nil), person.resources...)}
	if len(person.resources) == 0 {
		delete(l.people, key)
	}
	l.known[person.mailbox] = true
	online := len(l.people)
	l.mu.Unlock()

	l.bot.log.Debug("xmpp: live presence", "from", p.From, "type", p.Type, "show", p.Show, "resources", len(chat.Resources))
	l.bot.engine.SetChat(person.mailbox, chat)
	l.bot.met.presences.WithLabelValues("applied").Inc()
	l.bot.met.online.Set(float64(online))
}

// connecting marks, before a new stream delivers anything, everyone the
// feed knew from an earlier connection as unconfirmed: a server that
// sends a snapshot on connect (Prosody) re-confirms those still online.
func (l *live) connecting() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.confirm = make(map[string]bool, len(l.people))
	for k := range l.people {
		l.confirm[k] = true
	}
}

// connected starts believing the feed. With a snapshot, whoever it has
// not confirmed once it settled went offline meanwhile; without one
// (ejabberd 23.01) the unconfirmed are kept until they change.
func (l *live) connected(snapshot bool) {
	l.mu.Lock()
	l.feed, l.lostAt = true, time.Time{}
	switch {
	case !snapshot:
		l.confirm = nil
	case len(l.confirm) > 0:
		time.AfterFunc(settleDelay, l.settle)
	}
	l.mu.Unlock()
	l.markOffline()
}

// settleDelay is how long a connect snapshot takes to arrive in full.
var settleDelay = 2 * time.Second

// settle drops the people a reconnect snapshot did not confirm.
func (l *live) settle() {
	l.mu.Lock()
	gone := make(map[string]string, len(l.confirm))
	for k := range l.confirm {
		if p := l.people[k]; p != nil {
			gone[k] = p.mailbox
			delete(l.people, k)
		}
	}
	l.confirm = nil
	l.mu.Unlock()
	for _, mb := range gone {
		l.bot.engine.SetChat(mb, rules.Chat{Known: true})
	}
}

// disconnected starts the grace period.
func (l *live) disconnected() {
	l.mu.Lock()
	if l.feed {
		l.feed, l.lostAt = false, time.Now()
	}
	l.mu.Unlock()
}

// markOffline tells the engine that every tracked person not online is
// offline (Known, no resources): with a live feed, silence means offline.
func (l *live) markOffline() {
	l.mu.Lock()
	if !l.feed {
		l.mu.Unlock()
		return
	}
	online := make(map[string]bool, len(l.people))
	for _, p := range l.people {
		online[p.mailbox] = true
	}
	l.mu.Unlock()
	var mark []string
	for _, mb := range l.bot.engine.Mailboxes() {
		l.mu.Lock()
		if !online[mb] && !l.known[mb] {
			l.known[mb] = true
			mark = append(mark, mb)
		}
		l.mu.Unlock()
	}
	for _, mb := range mark {
		l.bot.engine.SetChat(mb, rules.Chat{Known: true})
	}
}

// expire forgets everything once the feed has been gone longer than the
// grace period: lookups then fall back to the calendar alone.
func (l *live) expire(now time.Time) {
	l.mu.Lock()
	if l.feed || l.lostAt.IsZero() || now.Sub(l.lostAt) < l.bot.cfg.Grace {
		l.mu.Unlock()
		return
	}
	known := l.known
	l.known, l.people, l.lostAt = map[string]bool{}, map[string]*onlinePerson{}, time.Time{}
	l.mu.Unlock()
	for mb := range known {
		l.bot.engine.SetChat(mb, rules.Chat{})
	}
	l.bot.met.online.Set(0)
	l.bot.log.Warn("xmpp presence feed lost for longer than the grace period: lookups use calendars alone", "grace", l.bot.cfg.Grace)
}

// run sweeps now and then: newly tracked people are marked offline, and
// the feed expires after a long outage.
func (l *live) run(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			l.expire(now)
			l.markOffline()
		}
	}
}

// online is a person's resources as the feed last said (for commands).
func (l *live) online(bareJID string) []rules.Resource {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p := l.people[strings.ToLower(bareJID)]; p != nil {
		return append([]rules.Resource(nil), p.resources...)
	}
	return nil
}

// seed replaces what the feed knows with the server's own session list,
// for servers that send no presence snapshot on connect (ejabberd 23.01):
// POST {api}/connected_users_info of ejabberd's mod_http_api.
func (l *live) seed(ctx context.Context, api string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(api, "/")+"/connected_users_info", strings.NewReader("{}"))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("session list: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("session list: %s: HTTP %s", req.URL, resp.Status)
	}
	var sessions []struct {
		JID        string `json:"jid"`
		Priority   int    `json:"priority"`
		Status     string `json:"status"`
		StatusText string `json:"statustext"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&sessions); err != nil {
		return fmt.Errorf("session list: %w", err)
	}
	l.mu.Lock()
	old := l.people
	l.people = make(map[string]*onlinePerson, len(old))
	l.confirm = nil
	l.mu.Unlock()
	for _, s := range sessions {
		show := s.Status
		if show == "available" {
			show = ""
		}
		l.apply(presenceStanza{From: s.JID, Show: show, Status: s.StatusText, Priority: strconv.Itoa(s.Priority)})
	}
	l.mu.Lock()
	var gone []string
	for k, p := range old {
		if l.people[k] == nil {
			gone = append(gone, p.mailbox)
		}
	}
	l.mu.Unlock()
	for _, mb := range gone {
		l.bot.engine.SetChat(mb, rules.Chat{Known: true})
	}
	return nil
}
