package xmppbot

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/presencegw/presencegw/rules"

	"github.com/presencegw/presencegw/internal/xmppbind"
)

// The ejabberd fallback: while a person is in a calendar state and
// online, the gateway keeps a client session user@host/calendar for them,
// logged in with a token ejabberd issues to its HTTP API (oauth_issue_token,
// SASL X-OAUTH2), whose presence carries the calendar state at priority
// -1: contacts see an extra resource, which the "dnd if any" clients
// show, and bare-JID messages never reach it (RFC 6121 §8.5.2.1.1).
//
// It is level-triggered: the publisher says what each person should show
// (apply), the live presence feed says who is online, and reconcile makes
// the sessions match, re-creating any that the server dropped. Sessions
// outlive a component reconnect within Config.Grace (no flap), close when
// the gateway stops, and close by themselves at the state's until.

// calendarResource is the resource of the gateway's calendar sessions.
const calendarResource = "calendar"

const (
	// calendarWorkers bounds the sessions being opened or closed at once
	// outside the publisher (after a reconnect, on presence changes).
	calendarWorkers = 16
	// calendarSweep is how often every session is checked again (lost
	// presence changes, a person's sessions without a live feed).
	calendarSweep = 15 * time.Second
	// calendarTokenTTL is the login token's lifetime; it is revoked
	// after the login anyway.
	calendarTokenTTL = 300
	// calendarRetryMax caps the wait before a failed login is retried.
	calendarRetryMax = time.Minute
	// calendarOfflineAfter is how long a person must look offline before
	// their session closes: a reconnect's session list arrives one
	// session at a time, the calendar resource possibly first.
	calendarOfflineAfter = 2 * time.Second
)

// calendarSessions is the ejabberd calendar-session mechanism. There is
// one per Bot; it serves every connection that chooses it.
type calendarSessions struct {
	bot   *Bot
	httpc *http.Client

	mu     sync.Mutex
	people map[string]*calPerson // by lower-case bare JID; entries are kept
	// active is true while a component connection uses the mechanism (or
	// within the grace period after it dropped); inactive, every session
	// is closed and none opened.
	active bool
	gen    int             // counts attach calls
	next   chan struct{}   // closed (and replaced) by each attach
	work   *workQueue      // people to reconcile, for the workers
	warned map[string]bool // people whose own "calendar" resource blocks a login
}

// calPerson is one person's wish and session.
type calPerson struct {
	// op serialises reconcile for the person (network I/O inside).
	op sync.Mutex

	// Guarded by calendarSessions.mu:
	want     *overlay    // what the publisher asked; nil = nothing
	sess     *calSession // the open session; nil = none
	started  time.Time   // when sess logged in
	failures int         // logins failed in a row
	retryAt  time.Time   // no login before this (after failures)
	timer    *time.Timer // wakes reconcile at until or retryAt
	offline  time.Time   // since when the person looks offline (with sess open)
}

// calSession is one logged-in user/calendar session.
type calSession struct {
	s     *xmpp.Session
	shown overlay // the presence it carries
	done  chan struct{}
	err   error // why Serve ended, set before done closes

	mu      sync.Mutex
	closing bool
}

func newCalendarSessions(b *Bot) *calendarSessions {
	return &calendarSessions{bot: b, httpc: &http.Client{Timeout: 15 * time.Second},
		people: map[string]*calPerson{}, next: make(chan struct{}), work: newWorkQueue(),
		warned: map[string]bool{}}
}

func (m *calendarSessions) name() string { return MechanismSession }

// has reports whether the person has a calendar session (open, or
// logged in and about to send its presence).
func (m *calendarSessions) has(bare string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.people[bare]
	return p != nil && p.sess != nil
}

// attach makes the mechanism serve connection c until c ends; ctx is
// Run's. When ctx ends every session closes; when c ends and no other
// connection attaches within Config.Grace, too.
func (m *calendarSessions) attach(ctx context.Context, c *conn) {
	m.mu.Lock()
	m.active = true
	m.gen++
	gen := m.gen
	close(m.next)
	m.next = make(chan struct{})
	next := m.next
	// A reconnect retries failed logins at once.
	for _, p := range m.people {
		p.failures, p.retryAt = 0, time.Time{}
	}
	m.mu.Unlock()
	if m.work.start(ctx, calendarWorkers, func(ctx context.Context, k string) { m.reconcile(ctx, k, true) }) {
		go m.follow(ctx)
	}
	go func() {
		select {
		case <-ctx.Done():
			m.deactivate("the gateway is stopping")
			return
		case <-c.done:
		}
		if ctx.Err() != nil {
			m.deactivate("the gateway is stopping")
			return
		}
		t := time.NewTimer(m.bot.cfg.Grace)
		defer t.Stop()
		select {
		case <-ctx.Done():
			m.deactivate("the gateway is stopping")
		case <-next:
			// Another connection took over.
		case <-t.C:
			m.mu.Lock()
			stale := m.gen == gen
			m.mu.Unlock()
			if stale {
				m.deactivate(fmt.Sprintf("the component has been disconnected for longer than the grace period (%v)", m.bot.cfg.Grace))
			}
		}
	}()
}

// deactivate closes every session and opens none until the next attach.
func (m *calendarSessions) deactivate(why string) {
	m.mu.Lock()
	if !m.active {
		m.mu.Unlock()
		return
	}
	m.active = false
	var open []string
	for k, p := range m.people {
		if p.sess != nil {
			open = append(open, k)
		}
	}
	m.mu.Unlock()
	if len(open) > 0 {
		m.bot.log.Warn("xmpp: closing every calendar session", "sessions", len(open), "reason", why)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, calendarWorkers)
	for _, k := range open {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			m.reconcile(context.Background(), k, false)
		})
	}
	wg.Wait()
}

// apply records what a person should show and brings their session in
// line at once. Failures are logged and retried here with a backoff, so
// the publisher counts the wish as held.
func (m *calendarSessions) apply(ctx context.Context, bareJID string, o overlay, set bool) error {
	k, err := userKey(bareJID)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.person(k).want = wishOf(o, set)
	m.mu.Unlock()
	m.reconcile(ctx, k, false)
	return nil
}

// list returns every wish the mechanism holds (an open session, or one
// waiting for the person to come online), so the publisher sends only
// the differences; it is complete. The publisher calls it first on each
// connection, after set-up: every session is checked again then.
func (m *calendarSessions) list(context.Context) (map[string]overlay, bool) {
	m.mu.Lock()
	held := map[string]overlay{}
	for k, p := range m.people {
		if p.want != nil {
			held[k] = *p.want
		}
	}
	m.mu.Unlock()
	m.sweep()
	return held, true
}

// person returns k's entry, making it. The caller holds m.mu.
func (m *calendarSessions) person(k string) *calPerson {
	p := m.people[k]
	if p == nil {
		p = &calPerson{}
		m.people[k] = p
	}
	return p
}

// schedule queues k for a worker (once, however often asked).
func (m *calendarSessions) schedule(k string) { m.work.add(k) }

// sweep schedules everyone with a wish or a session.
func (m *calendarSessions) sweep() {
	m.mu.Lock()
	var ks []string
	for k, p := range m.people {
		if p.want != nil || p.sess != nil {
			ks = append(ks, k)
		}
	}
	m.mu.Unlock()
	for _, k := range ks {
		m.schedule(k)
	}
}

// follow re-checks a person whose derived presence changed (they came
// online or went offline), and everyone now and then.
func (m *calendarSessions) follow(ctx context.Context) {
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
			j, ok := m.bot.dir.JIDOf(c.Mailbox)
			if !ok {
				continue
			}
			k := strings.ToLower(j)
			m.mu.Lock()
			p := m.people[k]
			interesting := p != nil && (p.want != nil || p.sess != nil)
			m.mu.Unlock()
			if interesting {
				m.schedule(k)
			}
		case <-t.C:
			m.sweep()
		}
	}
}

// reconcile makes k's session match the wish: open while there is a
// wish, the mechanism is active, the state has not run out and the
// person is online with a session of their own; closed otherwise.
// limited logins wait for the send rate (the publisher's apply already
// did).
func (m *calendarSessions) reconcile(ctx context.Context, k string, limited bool) {
	m.mu.Lock()
	p := m.person(k)
	m.mu.Unlock()
	p.op.Lock()
	defer p.op.Unlock()

	m.mu.Lock()
	var want overlay
	wanted := p.want != nil
	if wanted {
		want = *p.want
	}
	sess, active, retryAt := p.sess, m.active, p.retryAt
	m.mu.Unlock()

	now := time.Now()
	desired := wanted && active && (want.Until.IsZero() || now.Before(want.Until))
	if desired {
		online, err := m.online(ctx, k)
		switch {
		case err != nil:
			m.bot.log.Warn("xmpp: cannot tell whether a person is online; their calendar session stays as it is", "jid", k, "err", err)
			m.wake(p, k, now.Add(calendarSweep))
			return
		case !online && sess != nil:
			m.mu.Lock()
			if p.offline.IsZero() {
				p.offline = now
			}
			since := p.offline
			m.mu.Unlock()
			if now.Sub(since) < calendarOfflineAfter {
				m.wake(p, k, since.Add(calendarOfflineAfter))
				return
			}
			desired = false
		case !online:
			desired = false
		}
	}
	if desired || sess == nil {
		m.mu.Lock()
		p.offline = time.Time{}
		m.mu.Unlock()
	}
	switch {
	case !desired && sess != nil:
		m.closeSession(k, p, sess)
	case desired && sess != nil:
		if !sess.shown.equal(want) {
			if err := sess.sendPresence(ctx, want); err != nil {
				m.closeSession(k, p, sess)
				m.fail(p, k, fmt.Errorf("updating the presence: %w", err))
				return
			}
		}
	case desired && now.Before(retryAt):
		m.wake(p, k, retryAt)
		return
	case desired:
		if m.ownCalendarResource(k) {
			return
		}
		if limited {
			if err := m.bot.pub.limiter.Wait(ctx); err != nil {
				return
			}
		}
		if err := m.open(ctx, k, p, want); err != nil {
			m.fail(p, k, err)
			return
		}
	}
	if desired && !want.Until.IsZero() {
		// Close by itself at until, even if no clear comes (the
		// component is disconnected).
		m.wake(p, k, want.Until.Add(100*time.Millisecond))
	}
}

// wake schedules k's reconcile at t (replacing an earlier wake-up).
func (m *calendarSessions) wake(p *calPerson, k string, t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p.timer != nil {
		p.timer.Stop()
	}
	p.timer = time.AfterFunc(time.Until(t), func() { m.schedule(k) })
}

// fail counts a failed login and schedules the retry.
func (m *calendarSessions) fail(p *calPerson, k string, err error) {
	m.mu.Lock()
	p.failures++
	wait := min(time.Second<<min(p.failures-1, 6), calendarRetryMax)
	p.retryAt = time.Now().Add(wait)
	retryAt := p.retryAt
	m.mu.Unlock()
	m.bot.log.Warn("xmpp: calendar session failed", "jid", k, "err", err, "retry_in", wait)
	m.wake(p, k, retryAt)
}

// ownCalendarResource reports whether the person runs a client of their
// own with the resource "calendar": logging in would kick it out.
func (m *calendarSessions) ownCalendarResource(k string) bool {
	for _, r := range m.bot.live.online(k) {
		if r.Name == calendarResource && !r.ByGateway {
			m.mu.Lock()
			warn := !m.warned[k]
			m.warned[k] = true
			m.mu.Unlock()
			if warn {
				m.bot.log.Warn("xmpp: the person has a client with the resource "+calendarResource+" of their own; no calendar session for them", "jid", k)
			}
			return true
		}
	}
	return false
}

// online reports whether the person has a session of their own: from the
// live presence feed when there is one (or within its grace period),
// else from the server's session list.
func (m *calendarSessions) online(ctx context.Context, k string) (bool, error) {
	l := m.bot.live
	l.mu.Lock()
	trusted := l.feed || !l.lostAt.IsZero()
	var own bool
	if p := l.people[k]; p != nil {
		for _, r := range p.resources {
			own = own || !r.ByGateway
		}
	}
	l.mu.Unlock()
	if trusted {
		return own, nil
	}
	user, host, _ := strings.Cut(k, "@")
	var sessions []struct {
		Resource string `json:"resource"`
	}
	if err := m.call(ctx, "user_sessions_info", map[string]any{"user": user, "host": host}, &sessions); err != nil {
		return false, err
	}
	for _, s := range sessions {
		if s.Resource != calendarResource {
			return true, nil
		}
	}
	return false, nil
}

// call posts one command to ejabberd's mod_http_api and decodes the
// JSON answer into v (nil: ignored).
func (m *calendarSessions) call(ctx context.Context, command string, args any, v any) error {
	body, err := json.Marshal(args)
	if err != nil {
		return err
	}
	u := strings.TrimSuffix(m.bot.cfg.SessionsAPI, "/") + "/" + command
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := m.httpc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", command, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s: %w", command, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %s: %s", command, resp.Status, bytes.TrimSpace(b))
	}
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w (%s)", command, err, bytes.TrimSpace(b))
	}
	return nil
}

// clientServer is the c2s address the calendar sessions dial:
// Config.ClientServer, else the sessions API's host on port 5222.
func (m *calendarSessions) clientServer() (string, error) {
	if s := m.bot.cfg.ClientServer; s != "" {
		return s, nil
	}
	u, err := url.Parse(m.bot.cfg.SessionsAPI)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("no client_server configured and no host in sessions_api %q", m.bot.cfg.SessionsAPI)
	}
	return net.JoinHostPort(u.Hostname(), "5222"), nil
}

// open logs k in as k/calendar and sends the calendar presence.
func (m *calendarSessions) open(ctx context.Context, k string, p *calPerson, want overlay) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	user, err := jid.Parse(k)
	if err != nil {
		return err
	}
	full, err := user.WithResource(calendarResource)
	if err != nil {
		return err
	}
	var tok struct {
		Token string `json:"token"`
	}
	if err := m.call(ctx, "oauth_issue_token", map[string]any{"jid": k, "ttl": calendarTokenTTL, "scopes": "sasl_auth"}, &tok); err != nil {
		return fmt.Errorf("token: %w", err)
	}
	if tok.Token == "" {
		return errors.New("token: the sessions API returned none")
	}
	defer func() {
		// The token only served this login.
		if err := m.call(context.Background(), "oauth_revoke_token", map[string]any{"token": tok.Token}, nil); err != nil {
			m.bot.log.Debug("xmpp: revoking a calendar session's token", "jid", k, "err", err)
		}
	}()
	addr, err := m.clientServer()
	if err != nil {
		return err
	}
	nc, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	deadline, _ := ctx.Deadline()
	nc.SetDeadline(deadline)
	abort := context.AfterFunc(ctx, func() { nc.Close() })

	var state xmpp.SessionState
	var features []xmpp.StreamFeature
	if m.bot.cfg.ClientTLS == nil && isLoopback(addr) {
		// The connection does not leave the machine.
		state = xmpp.Secure
	} else {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if m.bot.cfg.ClientTLS != nil {
			cfg = m.bot.cfg.ClientTLS.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = user.Domainpart()
		}
		features = append(features, xmpp.StartTLS(cfg))
	}
	features = append(features, xmpp.SASL("", tok.Token, xOAuth2), xmppbind.Feature(calendarResource))
	s, err := xmpp.NewSession(ctx, user.Domain(), full, nc, state, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: features}
	}))
	if !abort() || err != nil {
		nc.Close()
		if err == nil || ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return fmt.Errorf("log in as %s at %s: %w", full, addr, err)
	}
	nc.SetDeadline(time.Time{})

	cs := &calSession{s: s, done: make(chan struct{})}
	go func() {
		cs.err = s.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			if start.Name.Local == "presence" {
				m.ownPresence(k, r, start)
			}
			// Nothing else sent to the calendar resource is for the
			// gateway: unanswered IQs get service-unavailable from
			// mellium.
			return nil
		}))
		close(cs.done)
		s.Conn().Close()
	}()
	// Registered before the presence goes out, so the live feed marks it
	// as the gateway's; unless the mechanism was deactivated meanwhile
	// (deactivate closes only what it sees registered).
	m.mu.Lock()
	active := m.active
	if active {
		p.sess, p.started = cs, time.Now()
	}
	m.mu.Unlock()
	if !active {
		cs.mu.Lock()
		cs.closing = true
		cs.mu.Unlock()
		_ = s.Close()
		s.Conn().Close()
		return nil
	}
	if err := cs.sendPresence(ctx, want); err != nil {
		m.closeSession(k, p, cs)
		return fmt.Errorf("presence: %w", err)
	}
	go m.watch(k, p, cs)
	m.bot.log.Info("xmpp: calendar session opened", "jid", full.String(), "show", want.Show, "status", want.Status)
	return nil
}

// ownPresence takes a presence the calendar session received. The
// server sends it the person's other resources' presence, including the
// unavailable of a client that just disconnected, which ejabberd 23.01's
// XEP-0356 feed does not forward (the overlay module does): the live
// tracker learns it, and the session closes when nobody of the person's
// own is left.
func (m *calendarSessions) ownPresence(k string, r xml.TokenReader, start *xml.StartElement) {
	var p presenceStanza
	if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r)).Decode(&p); err != nil {
		return
	}
	bare, resource, ok := strings.Cut(p.From, "/")
	if !ok || !strings.EqualFold(bare, k) || resource == calendarResource || p.Type != "" && p.Type != "unavailable" {
		return
	}
	l := m.bot.live
	l.mu.Lock()
	feed := l.feed
	l.mu.Unlock()
	if feed {
		l.apply(p)
	}
	if p.Type == "unavailable" {
		m.schedule(k)
	}
}

// watch notices a session the server ended (kicked, restarted) and
// reconciles, which logs in again if still wanted.
func (m *calendarSessions) watch(k string, p *calPerson, cs *calSession) {
	<-cs.done
	cs.mu.Lock()
	closing := cs.closing
	cs.mu.Unlock()
	if closing {
		return
	}
	m.mu.Lock()
	if p.sess == cs {
		p.sess = nil
	}
	if time.Since(p.started) > time.Minute {
		p.failures = 0
	}
	m.mu.Unlock()
	m.fail(p, k, fmt.Errorf("the server ended the session: %v", cs.err))
}

// closeSession ends a session: unavailable, then the stream.
func (m *calendarSessions) closeSession(k string, p *calPerson, cs *calSession) {
	cs.mu.Lock()
	cs.closing = true
	cs.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if own, ok := m.ownState(k); ok {
		// Clients that show the last presence received (Monal) keep a
		// gone resource's text: leave them the person's own.
		_ = cs.sendPresence(ctx, own)
	}
	_ = cs.s.Send(ctx, xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: "presence"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: "unavailable"}}}))
	_ = cs.s.Close()
	select {
	case <-cs.done:
	case <-ctx.Done():
	}
	_ = cs.s.Conn().Close()
	m.mu.Lock()
	if p.sess == cs {
		p.sess = nil
	}
	m.mu.Unlock()
	m.bot.log.Info("xmpp: calendar session closed", "jid", k+"/"+calendarResource)
}

// ownState is the presence of the person's main resource of their own
// (highest priority, then most available), as the live feed knows it.
func (m *calendarSessions) ownState(k string) (overlay, bool) {
	var best *rules.Resource
	for _, r := range m.bot.live.online(k) {
		if r.ByGateway {
			continue
		}
		if best == nil || r.Priority > best.Priority || r.Priority == best.Priority && showOrder(r.Show) < showOrder(best.Show) {
			best = &r
		}
	}
	if best == nil {
		return overlay{}, false
	}
	return overlay{Show: string(best.Show), Status: best.Status}, true
}

// showOrder ranks shows, most available first.
func showOrder(s rules.Show) int {
	switch s {
	case rules.ShowChat:
		return 0
	case rules.ShowAvailable:
		return 1
	case rules.ShowAway:
		return 2
	case rules.ShowXA:
		return 3
	}
	return 4
}

// sendPresence broadcasts the calendar state from the session.
func (cs *calSession) sendPresence(ctx context.Context, o overlay) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	text := func(name, s string) xml.TokenReader {
		return xmlstream.Wrap(xmlstream.Token(xml.CharData(s)), xml.StartElement{Name: xml.Name{Local: name}})
	}
	var parts []xml.TokenReader
	if o.Show != "" {
		parts = append(parts, text("show", o.Show))
	}
	if o.Status != "" {
		parts = append(parts, text("status", o.Status))
	}
	parts = append(parts, text("priority", "-1"))
	err := cs.s.Send(ctx, xmlstream.Wrap(xmlstream.MultiReader(parts...), xml.StartElement{Name: xml.Name{Local: "presence"}}))
	if err == nil {
		cs.shown = o
	}
	return err
}

// isLoopback reports whether host:port names this machine.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// xOAuth2 is ejabberd's SASL X-OAUTH2: PLAIN's framing with a token for
// the password ("\x00user\x00token"; mellium/sasl has no such mechanism).
var xOAuth2 = sasl.Mechanism{
	Name: "X-OAUTH2",
	Start: func(n *sasl.Negotiator) (bool, []byte, any, error) {
		user, token, identity := n.Credentials()
		resp := make([]byte, 0, len(identity)+len(user)+len(token)+2)
		resp = append(resp, identity...)
		resp = append(resp, 0)
		resp = append(resp, user...)
		resp = append(resp, 0)
		resp = append(resp, token...)
		return false, resp, nil, nil
	},
	Next: func(*sasl.Negotiator, []byte, any) (bool, []byte, any, error) {
		return false, nil, nil, sasl.ErrTooManySteps
	},
}
