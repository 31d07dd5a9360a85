package xmppbot

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// The shadow-contact fallback, for a server that cannot load the overlay
// module but grants the component the XEP-0356 roster permission (both):
// each person gets a shadow JID on the component's domain,
// alice\40example.com@calendar.example.com (XEP-0106 escaping of the
// person's bare JID), which the gateway puts into the roster of every
// local contact allowed to see the person's presence (subscription from
// or both in the person's roster) as "Alice (calendar)", subscription
// "to". While the person is in a calendar state and online, the shadow is
// available with the calendar state (dnd or xa and the calendar text);
// otherwise it is unavailable. Contacts' servers probe the shadow when a
// contact logs in; the component answers.
//
// Like the calendar sessions it is level-triggered: the publisher says
// what each person should show (apply), the live feed says who is
// online, and reconcile makes the shadow's presence and roster items
// match. Which contacts hold the item is kept in the store, so the items
// can be taken out again when the feature is turned off.

// shadowResource is the resource the shadows' presence comes from.
const shadowResource = "calendar"

// bucketShadow keeps, per person, the contacts whose roster holds the
// person's shadow and the contacts who removed it (see shadowRecord).
const bucketShadow = "xmpp-shadow-contacts"

// shadowRecord is one person's stored roster state.
type shadowRecord struct {
	// Contacts are the bare JIDs whose roster holds the shadow.
	Contacts []string `json:"contacts,omitempty"`
	// Declined are the contacts who removed it; it is not put back
	// until they subscribe to it again.
	Declined []string `json:"declined,omitempty"`
}

// shadowContacts is the shadow-contact mechanism; one per Bot.
type shadowContacts struct {
	bot   *Bot
	store Store

	mu     sync.Mutex
	conn   *conn // the connection it serves; nil while none does
	people map[string]*shadowPerson
	work   *workQueue // people to reconcile, for the workers
	// removing is true while turned-off items are being taken out.
	removing bool
}

// shadowPerson is one person's wish, shown state and roster items.
type shadowPerson struct {
	// op serialises reconcile for the person (network I/O inside).
	op sync.Mutex

	// Guarded by shadowContacts.mu:
	want  *overlay // what the publisher asked; nil = nothing
	shown *overlay // what the contacts were last sent; nil = unavailable
	// unsure is true when a restart lost what was shown: the next
	// unavailable goes out even though shown is nil.
	unsure   bool
	contacts map[string]bool // rosters holding the shadow
	declined map[string]bool // contacts who removed it
	synced   bool            // contacts checked on this connection and state
	timer    *time.Timer
}

func newShadowContacts(b *Bot, st Store) (*shadowContacts, error) {
	m := &shadowContacts{bot: b, store: st, people: map[string]*shadowPerson{},
		work: newWorkQueue()}
	if st == nil {
		return m, nil
	}
	err := st.ForEach(bucketShadow, func(k string, v []byte) error {
		var r shadowRecord
		if json.Unmarshal(v, &r) != nil {
			return nil
		}
		p := m.person(k)
		for _, c := range r.Contacts {
			p.contacts[c] = true
		}
		for _, c := range r.Declined {
			p.declined[c] = true
		}
		p.unsure = len(p.contacts) > 0
		return nil
	})
	return m, err
}

func (m *shadowContacts) name() string { return MechanismShadow }

// shadowOf is a person's shadow JID on the component's domain.
func (m *shadowContacts) shadowOf(bare string) (jid.JID, error) {
	return jid.New(escapeLocal(bare), m.bot.jid.Domainpart(), shadowResource)
}

// ownerOf is the person behind a shadow JID (bare, lower case), if it is
// one of the component's shadows for a person on a configured host.
func (m *shadowContacts) ownerOf(shadow string) (string, bool) {
	j, err := jid.Parse(shadow)
	if err != nil || j.Localpart() == "" || !strings.EqualFold(j.Domainpart(), m.bot.jid.Domainpart()) {
		return "", false
	}
	owner := strings.ToLower(unescapeLocal(j.Localpart()))
	local, host, ok := strings.Cut(owner, "@")
	if !ok || local == "" || !m.bot.hosts[host] {
		return "", false
	}
	return owner, true
}

// xep0106 are the characters XEP-0106 escapes, with their escapes.
var xep0106 = [][2]string{{` `, `\20`}, {`"`, `\22`}, {`&`, `\26`}, {`'`, `\27`}, {`/`, `\2f`},
	{`:`, `\3a`}, {`<`, `\3c`}, {`>`, `\3e`}, {`@`, `\40`}, {`\`, `\5c`}}

// escapeLocal escapes s for a localpart as XEP-0106 does (a backslash
// only where it would otherwise start an escape).
func escapeLocal(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch == '\\' {
			if _, n := unescapeAt(s, i); n == 0 {
				b.WriteByte(ch)
				continue
			}
		}
		esc := ""
		for _, e := range xep0106 {
			if e[0][0] == ch {
				esc = e[1]
			}
		}
		if esc == "" {
			b.WriteByte(ch)
		} else {
			b.WriteString(esc)
		}
	}
	return b.String()
}

// unescapeLocal undoes escapeLocal. (mellium's jid.Unescape turns \40
// into a wrong byte in v0.22.)
func unescapeLocal(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if ch, n := unescapeAt(s, i); n > 0 {
			b.WriteByte(ch)
			i += n - 1
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unescapeAt decodes an escape at s[i:]: the character and the bytes it
// took, or n = 0.
func unescapeAt(s string, i int) (byte, int) {
	if i+3 > len(s) || s[i] != '\\' {
		return 0, 0
	}
	for _, e := range xep0106 {
		if strings.EqualFold(s[i:i+3], e[1]) {
			return e[0][0], 3
		}
	}
	return 0, 0
}

// person returns k's entry, making it. The caller holds m.mu (or is the
// constructor).
func (m *shadowContacts) person(k string) *shadowPerson {
	p := m.people[k]
	if p == nil {
		p = &shadowPerson{contacts: map[string]bool{}, declined: map[string]bool{}}
		m.people[k] = p
	}
	return p
}

// attach makes the mechanism serve c until c ends.
func (m *shadowContacts) attach(ctx context.Context, c *conn) {
	m.mu.Lock()
	m.conn = c
	for _, p := range m.people {
		p.synced = false
	}
	m.mu.Unlock()
	if m.work.start(ctx, calendarWorkers, m.reconcileQueued) {
		go m.follow(ctx)
	}
	go func() {
		<-c.done
		m.mu.Lock()
		if m.conn == c {
			m.conn = nil
		}
		m.mu.Unlock()
	}()
}

// current is the connection the mechanism serves, or nil.
func (m *shadowContacts) current() *conn {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.conn
}

// apply records what a person should show and brings the shadow in line.
func (m *shadowContacts) apply(ctx context.Context, bareJID string, o overlay, set bool) error {
	k, err := userKey(bareJID)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.person(k).want = wishOf(o, set)
	m.mu.Unlock()
	return m.reconcile(ctx, k)
}

// list returns every wish held, so the publisher sends only the
// differences; it is complete (after a restart it holds only the shadows
// that may still show something, and the publisher sends everything
// again).
func (m *shadowContacts) list(context.Context) (map[string]overlay, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	held := map[string]overlay{}
	for k, p := range m.people {
		switch {
		case p.want != nil:
			held[k] = *p.want
		case p.unsure:
			// A restart lost what the shadow shows: differing from any
			// wish, it makes the publisher send a set or a clear.
			held[k] = overlay{Show: "unknown"}
		}
	}
	return held, true
}

// follow re-checks a person whose derived presence changed (they came
// online or went offline), and everyone with a wish or a shown shadow
// now and then.
func (m *shadowContacts) follow(ctx context.Context) {
	changes, stop := m.bot.engine.Subscribe(1024)
	defer stop()
	t := time.NewTicker(calendarSweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case c, ok := <-changes:
			if !ok {
				return
			}
			if j, ok := m.bot.dir.JIDOf(c.Mailbox); ok {
				m.schedule(strings.ToLower(j))
			}
		case <-t.C:
			m.mu.Lock()
			ks := make([]string, 0, len(m.people))
			for k := range m.people {
				ks = append(ks, k)
			}
			m.mu.Unlock()
			for _, k := range ks {
				m.schedule(k)
			}
		}
	}
}

// schedule queues k for a worker when its shadow differs from what it
// should show (once, however often asked). The workers share the
// publisher's send rate, so a shared boundary's changes and wake-ups do
// not burst the server.
func (m *shadowContacts) schedule(k string) {
	if m.needsWork(k) {
		m.work.add(k)
	}
}

// reconcileQueued is a worker's reconcile of k, at the publisher's send rate.
func (m *shadowContacts) reconcileQueued(ctx context.Context, k string) {
	if !m.needsWork(k) {
		return
	}
	if err := m.bot.pub.limiter.Wait(ctx); err != nil {
		return
	}
	if err := m.reconcile(ctx, k); err != nil {
		m.bot.log.Warn("xmpp: shadow contact", "jid", k, "err", err)
	}
}

// desired reports whether k's shadow should show want now: a wish that
// has not run out, and the person online. The caller holds m.mu.
func (m *shadowContacts) desired(p *shadowPerson, k string, now time.Time) (overlay, bool) {
	if p.want == nil || !p.want.Until.IsZero() && !now.Before(p.want.Until) {
		return overlay{}, false
	}
	return *p.want, m.online(k)
}

// needsWork reports, without I/O, whether reconcile has something to do
// for k.
func (m *shadowContacts) needsWork(k string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.people[k]
	if p == nil {
		return false
	}
	want, ok := m.desired(p, k, time.Now())
	if !ok {
		return p.shown != nil || p.unsure
	}
	return p.shown == nil || !p.synced || p.unsure || !p.shown.equal(want)
}

// reconcile makes k's shadow match the wish: available with the calendar
// state while there is a wish that has not run out and the person is
// online (as far as the live feed tells), unavailable otherwise. The
// roster items are checked against the person's roster each time a state
// begins and after each connect.
func (m *shadowContacts) reconcile(ctx context.Context, k string) error {
	m.mu.Lock()
	p := m.person(k)
	m.mu.Unlock()
	p.op.Lock()
	defer p.op.Unlock()

	c := m.current()
	if c == nil {
		return errors.New("not connected")
	}
	m.mu.Lock()
	want, desired := m.desired(p, k, time.Now())
	shown, unsure, synced := p.shown, p.unsure, p.synced
	m.mu.Unlock()

	switch {
	case desired:
		if shown == nil || !synced {
			if err := m.syncRoster(ctx, c, k, p); err != nil {
				return fmt.Errorf("shadow contact of %s: %w", k, err)
			}
		}
		if shown == nil || !shown.equal(want) || unsure {
			if err := m.broadcast(ctx, c, k, p, &want); err != nil {
				return err
			}
		}
		if !want.Until.IsZero() {
			m.wake(p, k, want.Until.Add(100*time.Millisecond))
		}
	case shown != nil || unsure:
		if err := m.broadcast(ctx, c, k, p, nil); err != nil {
			return err
		}
	}
	return nil
}

// wake schedules k's reconcile at t (replacing an earlier wake-up).
func (m *shadowContacts) wake(p *shadowPerson, k string, t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p.timer != nil {
		p.timer.Stop()
	}
	p.timer = time.AfterFunc(time.Until(t), func() { m.schedule(k) })
}

// online reports whether the person has a session of their own, as the
// live feed tells; without a feed (no presence permission, or lost for
// longer than the grace period) the shadow follows the calendar alone.
func (m *shadowContacts) online(k string) bool {
	l := m.bot.live
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.feed && l.lostAt.IsZero() {
		return true
	}
	p := l.people[k]
	return p != nil && len(p.resources) > 0
}

// broadcast sends the shadow's presence (o nil: unavailable) to every
// contact holding it, and records it as shown.
func (m *shadowContacts) broadcast(ctx context.Context, c *conn, k string, p *shadowPerson, o *overlay) error {
	from, err := m.shadowOf(k)
	if err != nil {
		return err
	}
	m.mu.Lock()
	to := sortedKeys(p.contacts)
	m.mu.Unlock()
	for _, contact := range to {
		if err := m.sendPresence(ctx, c, from, contact, "", o); err != nil {
			return fmt.Errorf("shadow presence to %s: %w", contact, err)
		}
	}
	m.mu.Lock()
	p.unsure = false
	if o != nil {
		w := *o
		p.shown = &w
	} else {
		p.shown = nil
	}
	m.mu.Unlock()
	kind, show := "unavailable", ""
	if o != nil {
		kind, show = "available", o.Show
	}
	m.bot.log.Debug("xmpp: shadow contact presence", "shadow", from.String(), "presence", kind, "show", show, "contacts", len(to))
	return nil
}

// sendPresence sends one presence from a shadow: o's state, or (o nil)
// typ ("" meaning unavailable).
func (m *shadowContacts) sendPresence(ctx context.Context, c *conn, from jid.JID, to, typ string, o *overlay) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	attrs := []xml.Attr{{Name: xml.Name{Local: "from"}, Value: from.String()}, {Name: xml.Name{Local: "to"}, Value: to}}
	var inner []xml.TokenReader
	if o == nil {
		if typ == "" {
			typ = "unavailable"
		} else {
			// Subscription answers come from the bare JID.
			attrs[0].Value = from.Bare().String()
		}
		attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "type"}, Value: typ})
	} else {
		text := func(name, s string) xml.TokenReader {
			return xmlstream.Wrap(xmlstream.Token(xml.CharData(s)), xml.StartElement{Name: xml.Name{Local: name}})
		}
		if o.Show != "" {
			inner = append(inner, text("show", o.Show))
		}
		if o.Status != "" {
			inner = append(inner, text("status", o.Status))
		}
	}
	return c.s.Send(ctx, xmlstream.Wrap(xmlstream.MultiReader(inner...), xml.StartElement{Name: xml.Name{Local: "presence"}, Attr: attrs}))
}

// rosterItem is one item of a roster as XEP-0356 roster get returns it.
type rosterItem struct {
	JID          string   `xml:"jid,attr"`
	Name         string   `xml:"name,attr"`
	Subscription string   `xml:"subscription,attr"`
	Groups       []string `xml:"group"`
}

// roster reads a user's roster (XEP-0356 roster get).
func (c *conn) roster(ctx context.Context, bare string) ([]rosterItem, error) {
	to, err := jid.Parse(bare)
	if err != nil {
		return nil, err
	}
	var reply struct {
		Items []rosterItem `xml:"query>item"`
	}
	err = c.iq(ctx, stanza.IQ{To: to, Type: stanza.GetIQ},
		xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: "jabber:iq:roster", Local: "query"}}), &reply)
	return reply.Items, err
}

// setRosterItem writes (or with subscription "remove" deletes) one item
// of a user's roster (XEP-0356 roster set).
func (c *conn) setRosterItem(ctx context.Context, bare string, it rosterItem) error {
	to, err := jid.Parse(bare)
	if err != nil {
		return err
	}
	attrs := []xml.Attr{{Name: xml.Name{Local: "jid"}, Value: it.JID}, {Name: xml.Name{Local: "subscription"}, Value: it.Subscription}}
	if it.Name != "" {
		attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "name"}, Value: it.Name})
	}
	var groups []xml.TokenReader
	for _, g := range it.Groups {
		groups = append(groups, xmlstream.Wrap(xmlstream.Token(xml.CharData(g)), xml.StartElement{Name: xml.Name{Local: "group"}}))
	}
	item := xmlstream.Wrap(xmlstream.MultiReader(groups...), xml.StartElement{Name: xml.Name{Local: "item"}, Attr: attrs})
	return c.iq(ctx, stanza.IQ{To: to, Type: stanza.SetIQ},
		xmlstream.Wrap(item, xml.StartElement{Name: xml.Name{Space: "jabber:iq:roster", Local: "query"}}), nil)
}

// allowedContacts reads k's roster: the local contacts allowed to see k's
// presence (subscription from or both).
func (m *shadowContacts) allowedContacts(ctx context.Context, c *conn, k string) (map[string]bool, error) {
	items, err := c.roster(ctx, k)
	if err != nil {
		return nil, fmt.Errorf("reading the roster of %s: %w", k, err)
	}
	allowed := map[string]bool{}
	for _, it := range items {
		if it.Subscription != "from" && it.Subscription != "both" {
			continue
		}
		j, err := jid.Parse(it.JID)
		if err != nil || j.Localpart() == "" || j.Resourcepart() != "" || !m.bot.hosts[strings.ToLower(j.Domainpart())] {
			continue // remote contacts (s2s) and the component's own JIDs
		}
		allowed[strings.ToLower(j.Bare().String())] = true
	}
	return allowed, nil
}

// syncRoster puts k's shadow into the roster of each contact allowed to
// see k's presence, and takes it out of the rosters of those no longer
// allowed (after sending them unavailable).
func (m *shadowContacts) syncRoster(ctx context.Context, c *conn, k string, p *shadowPerson) error {
	allowed, err := m.allowedContacts(ctx, c, k)
	if err != nil {
		return err
	}
	shadow, err := m.shadowOf(k)
	if err != nil {
		return err
	}
	shadowBare := shadow.Bare().String()
	m.mu.Lock()
	var add, drop []string
	for contact := range allowed {
		if !p.contacts[contact] && !p.declined[contact] {
			add = append(add, contact)
		}
	}
	for contact := range p.contacts {
		if !allowed[contact] {
			drop = append(drop, contact)
		}
	}
	for contact := range p.declined {
		if !allowed[contact] {
			delete(p.declined, contact) // no longer a contact: forget
		}
	}
	m.mu.Unlock()
	sort.Strings(add)
	sort.Strings(drop)
	for _, contact := range drop {
		_ = m.sendPresence(ctx, c, shadow, contact, "", nil)
		if err := c.setRosterItem(ctx, contact, rosterItem{JID: shadowBare, Subscription: "remove"}); err != nil && !isCondition(err, stanza.ItemNotFound) {
			return fmt.Errorf("removing %s from the roster of %s: %w", shadowBare, contact, err)
		}
		m.mu.Lock()
		delete(p.contacts, contact)
		m.mu.Unlock()
		m.bot.log.Info("xmpp: shadow contact removed (no longer a contact)", "shadow", shadowBare, "contact", contact)
	}
	for _, contact := range add {
		it, err := m.itemFor(ctx, c, contact, k, shadowBare)
		if err != nil {
			return err
		}
		if err := c.setRosterItem(ctx, contact, it); err != nil {
			return fmt.Errorf("adding %s to the roster of %s: %w", shadowBare, contact, err)
		}
		m.mu.Lock()
		p.contacts[contact] = true
		m.mu.Unlock()
		m.bot.log.Info("xmpp: shadow contact added", "shadow", shadowBare, "contact", contact, "name", it.Name)
	}
	m.mu.Lock()
	p.synced = true
	m.mu.Unlock()
	if len(add) > 0 || len(drop) > 0 {
		m.save(k)
	}
	return nil
}

// itemFor is the roster item for k's shadow in contact's roster: named
// after what contact calls k ("Alice (calendar)"), in the same groups.
func (m *shadowContacts) itemFor(ctx context.Context, c *conn, contact, k, shadowBare string) (rosterItem, error) {
	items, err := c.roster(ctx, contact)
	if err != nil {
		return rosterItem{}, fmt.Errorf("reading the roster of %s: %w", contact, err)
	}
	name, _, _ := strings.Cut(k, "@")
	var groups []string
	for _, it := range items {
		if strings.EqualFold(it.JID, k) {
			if it.Name != "" {
				name = it.Name
			}
			groups = it.Groups
		}
	}
	return rosterItem{JID: shadowBare, Name: name + " (calendar)", Subscription: "to", Groups: groups}, nil
}

// isCondition reports whether err is an XMPP error with condition cond.
func isCondition(err error, cond stanza.Condition) bool {
	var se stanza.Error
	return errors.As(err, &se) && se.Condition == cond
}

// save writes k's roster state to the store.
func (m *shadowContacts) save(k string) {
	if m.store == nil {
		return
	}
	m.mu.Lock()
	p := m.people[k]
	r := shadowRecord{Contacts: sortedKeys(p.contacts), Declined: sortedKeys(p.declined)}
	m.mu.Unlock()
	var err error
	if len(r.Contacts) == 0 && len(r.Declined) == 0 {
		err = m.store.Write(bucketShadow, false, nil, []string{k})
	} else {
		v, _ := json.Marshal(r)
		err = m.store.Write(bucketShadow, false, map[string][]byte{k: v}, nil)
	}
	if err != nil {
		m.bot.log.Error("xmpp: saving shadow contacts", "jid", k, "err", err)
	}
}

func sortedKeys(s map[string]bool) []string {
	out := make([]string, 0, len(s))
	for k := range s {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// handlePresence takes a presence addressed to a shadow JID: probes
// (a contact logging in), subscription requests and removals. It
// answers in the background: the reply may need a roster read, which
// must not block the stream.
func (m *shadowContacts) handlePresence(c *conn, p presenceStanza, to string) {
	owner, ok := m.ownerOf(to)
	if !ok || c.s == nil {
		return
	}
	from, err := jid.Parse(p.From)
	if err != nil || from.Localpart() == "" {
		return
	}
	fromBare := strings.ToLower(from.Bare().String())
	switch p.Type {
	case "probe", "subscribe", "unsubscribe":
	default:
		return // available/unavailable/subscribed/unsubscribed: nothing to do
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := m.answer(ctx, c, owner, fromBare, p.Type); err != nil {
			m.bot.log.Warn("xmpp: answering a presence to a shadow contact", "shadow_of", owner, "from", fromBare, "type", p.Type, "err", err)
		}
	}()
}

// answer replies to a probe, subscribe or unsubscribe from contact to
// owner's shadow.
func (m *shadowContacts) answer(ctx context.Context, c *conn, owner, contact, typ string) error {
	shadow, err := m.shadowOf(owner)
	if err != nil {
		return err
	}
	// Nothing is made for a shadow nobody holds: anyone may address any
	// localpart on the component's domain.
	m.mu.Lock()
	p := m.people[owner]
	holds := p != nil && p.contacts[contact]
	var shown *overlay
	if holds && p.shown != nil {
		w := *p.shown
		shown = &w
	}
	m.mu.Unlock()
	switch typ {
	case "probe":
		switch {
		case shown != nil:
			return m.sendPresence(ctx, c, shadow, contact, "", shown)
		case holds:
			return m.sendPresence(ctx, c, shadow, contact, "", nil)
		default:
			// Not a contact allowed to see it: reveal nothing.
			return m.sendPresence(ctx, c, shadow, contact, "unsubscribed", nil)
		}
	case "unsubscribe":
		if !holds {
			return nil
		}
		// The contact removed the shadow (or unsubscribed): do not put
		// it back until they ask for it.
		m.mu.Lock()
		delete(p.contacts, contact)
		p.declined[contact] = true
		m.mu.Unlock()
		m.save(owner)
		m.bot.log.Info("xmpp: shadow contact removed by the contact", "shadow_of", owner, "contact", contact)
		return nil
	}
	// A subscription request costs a roster read: limited per sender
	// like the commands.
	if cl, ok := m.bot.callerOf(contact); !ok || !cl.local || !m.bot.ans.limits.allow(cl) {
		return nil
	}
	// subscribe: granted to contacts allowed to see the owner's presence.
	allowed, err := m.allowedContacts(ctx, c, owner)
	if err != nil {
		return err
	}
	if !allowed[contact] {
		return m.sendPresence(ctx, c, shadow, contact, "unsubscribed", nil)
	}
	if err := m.sendPresence(ctx, c, shadow, contact, "subscribed", nil); err != nil {
		return err
	}
	m.mu.Lock()
	p = m.person(owner)
	p.contacts[contact] = true
	delete(p.declined, contact)
	shown = nil
	if p.shown != nil {
		w := *p.shown
		shown = &w
	}
	m.mu.Unlock()
	m.save(owner)
	if shown != nil {
		return m.sendPresence(ctx, c, shadow, contact, "", shown)
	}
	return nil
}

// removeAll takes every shadow item the store records out of the
// contacts' rosters (after an unavailable): the feature is off on this
// connection (turned off, or the overlay module is loaded now). It runs
// at the publisher's send rate and stops when c ends; what is left is
// taken out on a later connection.
func (m *shadowContacts) removeAll(c *conn) {
	m.mu.Lock()
	if m.removing {
		m.mu.Unlock()
		return
	}
	var owners []string
	for k, p := range m.people {
		if len(p.contacts) > 0 || len(p.declined) > 0 {
			owners = append(owners, k)
		}
	}
	if len(owners) == 0 {
		m.mu.Unlock()
		return
	}
	m.removing = true
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.removing = false
		m.mu.Unlock()
	}()
	sort.Strings(owners)
	ctx, cancel := c.context()
	defer cancel()
	m.bot.log.Info("xmpp: shadow contacts are off: removing their roster items", "people", len(owners))
	removed := 0
	for _, k := range owners {
		shadow, err := m.shadowOf(k)
		if err != nil {
			continue
		}
		m.mu.Lock()
		p := m.people[k]
		contacts := sortedKeys(p.contacts)
		m.mu.Unlock()
		for _, contact := range contacts {
			if err := m.bot.pub.limiter.Wait(ctx); err != nil {
				return
			}
			_ = m.sendPresence(ctx, c, shadow, contact, "", nil)
			err := c.setRosterItem(ctx, contact, rosterItem{JID: shadow.Bare().String(), Subscription: "remove"})
			if err != nil && !isCondition(err, stanza.ItemNotFound) {
				m.bot.log.Warn("xmpp: removing a shadow contact failed; retried on the next connection", "shadow", shadow.Bare().String(), "contact", contact, "err", err)
				return
			}
			m.mu.Lock()
			delete(p.contacts, contact)
			m.mu.Unlock()
			removed++
		}
		m.mu.Lock()
		p.declined = map[string]bool{}
		p.shown, p.unsure = nil, false
		m.mu.Unlock()
		m.save(k)
	}
	m.bot.log.Info("xmpp: shadow contacts removed", "items", removed)
}

// rosterSetWorks tries a harmless XEP-0356 roster set (removing an item
// that does not exist from a known user's roster): ejabberd before 23.10
// answers every roster set with internal-server-error. ok is true when
// the server accepted it or had no user to try it on (then the first real
// roster set tells).
func (c *conn) rosterSetWorks(ctx context.Context) (ok bool, why string) {
	b := c.bot
	var candidates []string
	for _, mb := range b.engine.Mailboxes() {
		if j, found := b.dir.JIDOf(mb); found {
			if _, host, _ := strings.Cut(strings.ToLower(j), "@"); b.hosts[host] {
				candidates = append(candidates, j)
			}
		}
		if len(candidates) == 3 {
			break
		}
	}
	if len(candidates) == 0 {
		return true, ""
	}
	probe := "presencegw-roster-check@" + b.jid.Domainpart()
	var last error
	for _, u := range candidates {
		err := c.setRosterItem(ctx, u, rosterItem{JID: probe, Subscription: "remove"})
		if err == nil || isCondition(err, stanza.ItemNotFound) {
			return true, ""
		}
		last = err
	}
	return false, fmt.Sprintf("the server refused a roster set (XEP-0356) on %s: %v (ejabberd before 23.10 cannot do it)", strings.Join(candidates, ", "), last)
}

// shadowPresence decodes a presence addressed to to (a JID with a
// localpart on the component's domain) for the shadow contacts.
func (c *conn) shadowPresence(r xml.TokenReader, start *xml.StartElement, to string) error {
	var p presenceStanza
	if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r)).Decode(&p); err != nil {
		return nil
	}
	c.bot.log.Debug("xmpp: presence to a shadow contact", "to", to, "from", p.From, "type", p.Type)
	c.bot.shadow.handlePresence(c, p, to)
	return nil
}

// shadowMessage answers a chat message sent to a shadow contact: the
// writer meant the person, so they are told where to write instead.
// Nothing else goes to shadows; the answer is rate-limited per sender
// like the commands.
func (b *Bot) shadowMessage(w xmlstream.TokenWriter, from, to, typ, body string) error {
	switch typ {
	case "", "normal", "chat":
	default:
		return nil
	}
	owner, ok := b.shadow.ownerOf(to)
	if !ok || strings.TrimSpace(body) == "" {
		return nil
	}
	c, ok := b.callerOf(from)
	if !ok || !b.ans.limits.allow(c) {
		return nil
	}
	shadow, err := b.shadow.shadowOf(owner)
	if err != nil {
		return nil
	}
	text := "This contact shows the calendar state of " + owner + " (meetings, out of office). Messages here reach nobody: write to " + owner + "."
	_, err = xmlstream.Copy(w, el(xml.Name{Local: "message"},
		attrs("type", "chat", "from", shadow.String(), "to", c.full, "id", newID()),
		el(xml.Name{Local: "body"}, nil).text(text)).reader())
	return err
}
