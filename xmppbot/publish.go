package xmppbot

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/presencegw/presencegw/internal/presence"
	"github.com/presencegw/presencegw/rules"
)

// bucketOverlays keeps, per bare JID, the overlay the server holds as
// far as the gateway knows, so a restart knows what it published.
const bucketOverlays = "xmpp-overlays"

// maxInFlight bounds overlay requests awaiting the server's answer.
const maxInFlight = 64

// overlay is the calendar state a person's contacts should see.
type overlay struct {
	Show   string    `json:"show"`
	Status string    `json:"status,omitempty"`
	Until  time.Time `json:"until,omitzero"`
}

func (o overlay) equal(p overlay) bool {
	return o.Show == p.Show && o.Status == p.Status && o.Until.Equal(p.Until)
}

// wantFor is the overlay the derived presence asks for: a meeting is dnd,
// out of office xa, with the rules' text; nothing otherwise. Calendar is
// Unknown for a person who opted out, so they get nothing.
func wantFor(out rules.Output) (overlay, bool) {
	var show string
	switch out.Calendar.State {
	case rules.Busy:
		show = "dnd"
	case rules.OOF:
		show = "xa"
	default:
		return overlay{}, false
	}
	o := overlay{Show: show, Status: out.Calendar.Status}
	if !out.Calendar.Until.IsZero() {
		o.Until = out.Calendar.Until.UTC().Truncate(time.Second)
	}
	return o, true
}

// publisher keeps the server's overlays equal to what the calendars say:
// a queue holding only each person's latest wish, drained at a bounded
// rate while connected.
type publisher struct {
	bot     *Bot
	store   Store
	limiter *rate.Limiter

	mu       sync.Mutex
	want     map[string]overlay // by bare JID; absent = none
	have     map[string]overlay // what the server holds
	queue    []string
	queued   map[string]bool
	inflight map[string]bool
	unsaved  map[string]bool
	conn     *conn
	wake     chan struct{}
}

func newPublisher(b *Bot, st Store) (*publisher, error) {
	p := &publisher{bot: b, store: st, limiter: rate.NewLimiter(rate.Limit(b.cfg.SendRate), b.cfg.Burst),
		want: map[string]overlay{}, have: map[string]overlay{}, queued: map[string]bool{},
		inflight: map[string]bool{}, unsaved: map[string]bool{}, wake: make(chan struct{}, 1)}
	if st == nil {
		return p, nil
	}
	err := st.ForEach(bucketOverlays, func(k string, v []byte) error {
		var o overlay
		if json.Unmarshal(v, &o) == nil {
			p.have[k] = o
		}
		return nil
	})
	return p, err
}

// follow turns the engine's changes into wishes, starting from every
// tracked person's current state.
func (p *publisher) follow(ctx context.Context, changes <-chan presence.Change) {
	p.resync()
	flush := time.NewTicker(time.Second)
	defer flush.Stop()
	// The engine drops changes a subscriber has no room for (a large
	// shared boundary): re-reading everyone now and then repairs that.
	resync := time.NewTicker(resyncInterval)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			p.save()
			return
		case c, ok := <-changes:
			if !ok {
				return
			}
			p.wish(c.Mailbox, c.Output)
		case <-flush.C:
			p.save()
		case <-resync.C:
			p.resync()
		}
	}
}

// resyncInterval is how often every tracked person's state is re-read.
var resyncInterval = 30 * time.Second

// resync wishes every tracked person's current state; unchanged wishes
// cost nothing (enqueue skips what the server already holds).
func (p *publisher) resync() {
	for _, mb := range p.bot.engine.Mailboxes() {
		if out, ok := p.bot.engine.Get(mb); ok {
			p.wish(mb, out)
		}
	}
}

// wish records what a mailbox's owner should show and queues it.
func (p *publisher) wish(mailbox string, out rules.Output) {
	j, ok := p.bot.dir.JIDOf(mailbox)
	if !ok {
		return
	}
	j = strings.ToLower(j)
	w, set := wantFor(out)
	p.bot.log.Debug("xmpp: calendar state", "jid", j, "overlay", set, "show", w.Show, "status", w.Status)
	p.mu.Lock()
	if set {
		p.want[j] = w
	} else {
		delete(p.want, j)
	}
	p.enqueue(j)
	p.mu.Unlock()
}

// enqueue queues j once if the server's state differs from the wish.
// The caller holds p.mu.
func (p *publisher) enqueue(j string) {
	w, wok := p.want[j]
	h, hok := p.have[j]
	if wok == hok && (!wok || w.equal(h)) || p.queued[j] {
		return
	}
	p.queued[j] = true
	p.queue = append(p.queue, j)
	p.bot.met.queue.Set(float64(len(p.queue)))
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// mechanism is how overlays reach contacts on a connection: the server
// module (moduleMechanism), or a fallback where no module can be loaded.
type mechanism interface {
	// name is how logs and doctor call it.
	name() string
	// apply sets (set true) or clears a person's overlay.
	apply(ctx context.Context, bareJID string, o overlay, set bool) error
	// list returns the overlays the server holds for this component;
	// ok is false when it cannot tell (then everything is sent again).
	list(ctx context.Context) (held map[string]overlay, ok bool)
}

// moduleMechanism is the overlay module of docs/overlay-protocol.md.
type moduleMechanism struct{ c *conn }

func (m moduleMechanism) name() string { return "overlay module" }

func (m moduleMechanism) apply(ctx context.Context, bareJID string, o overlay, set bool) error {
	return m.c.setOverlay(ctx, bareJID, o, set)
}

func (m moduleMechanism) list(ctx context.Context) (map[string]overlay, bool) {
	listed := map[string]overlay{}
	for _, h := range m.c.bot.cfg.Hosts {
		l, err := m.c.listOverlays(ctx, h)
		if err != nil {
			m.c.bot.log.Warn("xmpp: listing overlays failed; re-sending every overlay", "host", h, "err", err)
			return nil, false
		}
		for k, v := range l {
			listed[k] = v
		}
	}
	return listed, true
}

// connected reconciles with what the server holds and starts sending.
func (p *publisher) connected(c *conn) {
	if c.mech == nil {
		p.bot.log.Warn("xmpp: no way to publish calendar states to contacts on this server (see xmppbot/README.md)")
		return
	}
	listed, complete := c.mech.list(context.Background())
	p.mu.Lock()
	if complete {
		for k := range p.have {
			if _, ok := listed[k]; !ok {
				p.unsaved[k] = true
			}
		}
		for k := range listed {
			p.unsaved[k] = true
		}
		p.have = listed
	} else {
		// Unknown server state: assume it holds nothing we want and
		// everything we ever published (a clear is harmless).
		for k, w := range p.want {
			if h, ok := p.have[k]; ok && h.equal(w) {
				delete(p.have, k)
			}
		}
	}
	keys := make([]string, 0, len(p.want)+len(p.have))
	for k := range p.want {
		keys = append(keys, k)
	}
	for k := range p.have {
		if _, ok := p.want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		p.enqueue(k)
	}
	p.conn = c
	p.mu.Unlock()
	go p.send(c)
}

// disconnected stops sending; queued wishes wait for the next connection.
func (p *publisher) disconnected() {
	p.mu.Lock()
	p.conn = nil
	p.mu.Unlock()
}

// send drains the queue over c until c ends.
func (p *publisher) send(c *conn) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	slots := make(chan struct{}, maxInFlight)
	for {
		p.mu.Lock()
		var j string
		for len(p.queue) > 0 && j == "" {
			k := p.queue[0]
			p.queue = p.queue[1:]
			delete(p.queued, k)
			if !p.inflight[k] {
				j = k
			} // else: re-queued when the request in flight completes
		}
		p.bot.met.queue.Set(float64(len(p.queue)))
		p.mu.Unlock()
		if j == "" {
			select {
			case <-p.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		if err := p.limiter.Wait(ctx); err != nil {
			p.requeue(j)
			return
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			p.requeue(j)
			return
		}
		p.mu.Lock()
		w, set := p.want[j]
		h, had := p.have[j]
		if set == had && (!set || w.equal(h)) {
			p.mu.Unlock()
			<-slots
			continue
		}
		p.inflight[j] = true
		p.mu.Unlock()
		go func() {
			defer func() { <-slots }()
			err := c.mech.apply(ctx, j, w, set)
			p.done(j, w, set, err)
		}()
	}
}

// requeue puts j back after an interrupted send.
func (p *publisher) requeue(j string) {
	p.mu.Lock()
	p.enqueue(j)
	p.mu.Unlock()
}

// done records a request's outcome. On success the server holds what was
// sent; a refusal (item-not-found, forbidden) is logged and not retried
// until the wish changes; a lost connection retries on the next one.
func (p *publisher) done(j string, w overlay, set bool, err error) {
	kind := "clear"
	if set {
		kind = "set"
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.inflight, j)
	var se stanza.Error
	switch {
	case err == nil:
		p.bot.log.Debug("xmpp: overlay published", "jid", j, "request", kind, "show", w.Show, "status", w.Status)
		p.bot.met.requests.WithLabelValues(kind, "ok").Inc()
		if set {
			p.have[j] = w
		} else {
			delete(p.have, j)
		}
		p.unsaved[j] = true
	case errors.As(err, &se):
		p.bot.met.requests.WithLabelValues(kind, string(se.Condition)).Inc()
		p.bot.log.Warn("xmpp: overlay refused", "jid", j, "request", kind, "condition", string(se.Condition), "text", se.Error())
		if set {
			p.have[j] = w // not retried until the wish changes
		} else {
			delete(p.have, j)
		}
		return
	default:
		p.bot.met.requests.WithLabelValues(kind, "failed").Inc()
	}
	p.enqueue(j)
}

// save writes the changed entries of have to the store.
func (p *publisher) save() {
	if p.store == nil {
		return
	}
	p.mu.Lock()
	if len(p.unsaved) == 0 {
		p.mu.Unlock()
		return
	}
	puts := map[string][]byte{}
	var dels []string
	for k := range p.unsaved {
		if h, ok := p.have[k]; ok {
			puts[k], _ = json.Marshal(h)
		} else {
			dels = append(dels, k)
		}
	}
	p.unsaved = map[string]bool{}
	p.mu.Unlock()
	if err := p.store.Write(bucketOverlays, false, puts, dels); err != nil {
		p.bot.log.Error("xmpp: saving published overlays", "err", err)
	}
}

// published is the overlay the server holds for a person, if any.
func (p *publisher) published(bareJID string) (overlay, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	o, ok := p.have[strings.ToLower(bareJID)]
	return o, ok
}

// setOverlay sends one set (or clear) request to the person's host.
func (c *conn) setOverlay(ctx context.Context, bareJID string, o overlay, set bool) error {
	j, err := jid.Parse(bareJID)
	if err != nil {
		return stanza.Error{Type: stanza.Modify, Condition: stanza.JIDMalformed, Text: map[string]string{"": err.Error()}}
	}
	attrs := []xml.Attr{{Name: xml.Name{Local: "jid"}, Value: bareJID}}
	name := "clear"
	var inner xml.TokenReader
	if set {
		name = "overlay"
		attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "show"}, Value: o.Show})
		if !o.Until.IsZero() {
			attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "until"}, Value: o.Until.UTC().Format(time.RFC3339)})
		}
		if o.Status != "" {
			inner = xmlstream.Wrap(xmlstream.Token(xml.CharData(o.Status)), xml.StartElement{Name: xml.Name{Local: "status"}})
		}
	}
	payload := xmlstream.Wrap(inner, xml.StartElement{Name: xml.Name{Space: NSOverlay, Local: name}, Attr: attrs})
	return c.iq(ctx, stanza.IQ{To: j.Domain(), Type: stanza.SetIQ}, payload, nil)
}

// listOverlays asks a host which overlays this component owns there.
func (c *conn) listOverlays(ctx context.Context, host string) (map[string]overlay, error) {
	to, err := jid.Parse(host)
	if err != nil {
		return nil, err
	}
	var reply struct {
		Overlays []struct {
			JID    string `xml:"jid,attr"`
			Show   string `xml:"show,attr"`
			Until  string `xml:"until,attr"`
			Status string `xml:"status"`
		} `xml:"overlays>overlay"`
	}
	err = c.iq(ctx, stanza.IQ{To: to, Type: stanza.GetIQ},
		xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: NSOverlay, Local: "overlays"}}), &reply)
	if err != nil {
		return nil, err
	}
	out := make(map[string]overlay, len(reply.Overlays))
	for _, o := range reply.Overlays {
		ov := overlay{Show: o.Show, Status: o.Status}
		if o.Until != "" {
			ov.Until, _ = time.Parse(time.RFC3339, o.Until)
		}
		out[strings.ToLower(o.JID)] = ov
	}
	return out, nil
}
