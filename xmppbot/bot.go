package xmppbot

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/presencegw/presencegw/internal/presence"
	"github.com/presencegw/presencegw/rules"
	"github.com/presencegw/presencegw/web"
)

// Engine is what the component needs of the presence engine.
type Engine interface {
	// Subscribe streams presence changes; see presence.Engine.Subscribe.
	Subscribe(buffer int) (<-chan presence.Change, func())
	// Get is a mailbox's current derived presence.
	Get(id string) (rules.Output, bool)
	// Mailboxes lists the tracked mailboxes.
	Mailboxes() []string
	// SetChat records a person's live chat presence.
	SetChat(id string, chat rules.Chat)
	// SetOptOut and OptedOut keep a person's "calendar off" choice.
	SetOptOut(id string, optOut bool) error
	OptedOut(id string) bool
}

// Directory maps between a person's mailbox and JID.
type Directory interface {
	// JIDOf is the bare JID of a mailbox's owner.
	JIDOf(mailbox string) (string, bool)
	// MailboxOf is the mailbox of a bare JID's owner.
	MailboxOf(bareJID string) (string, bool)
}

// Store keeps the published overlays across restarts (internal/store).
type Store interface {
	ForEach(bucket string, fn func(key string, value []byte) error) error
	Write(bucket string, reset bool, puts map[string][]byte, deletes []string) error
}

// Config is the component's connection and behaviour.
type Config struct {
	// Server is the server's component port, host:port.
	Server string
	// JID is the component's address, e.g. calendar.example.com.
	JID string
	// Secret is the XEP-0114 handshake secret.
	Secret []byte
	// Hosts are the users' virtual hosts: overlay requests go there and
	// only their users' presence is learnt. Default: JID's parent domain.
	Hosts []string
	// SendRate bounds overlay requests per second (default 200), Burst
	// how many may go at once (default 50): a shared meeting boundary
	// must not flood the server.
	SendRate float64
	Burst    int
	// NoScheduled sends each calendar state only when it starts, even to
	// a module that takes scheduled overlays (normally each person's next
	// state goes ahead with its start time, so a boundary shared by
	// thousands costs no requests at that instant). For a server whose
	// clock cannot be trusted, and to measure the difference.
	NoScheduled bool
	// ReconnectMax caps the reconnect backoff (default 1 min).
	ReconnectMax time.Duration
	// Grace is how long live presence learnt before a disconnect is still
	// believed (default 2 min); after it people count as unknown.
	Grace time.Duration
	// Logger gets connection events; nil discards.
	Logger *slog.Logger
	// SessionsAPI is ejabberd's mod_http_api base URL (e.g.
	// http://127.0.0.1:5280/api): ejabberd 23.01 sends no presence
	// snapshot when the component connects, so the online sessions are
	// read from there. Not needed for Prosody.
	SessionsAPI string
	// ClientServer is the c2s address (host:port) of the fallback's
	// calendar sessions on ejabberd without the overlay module (see
	// README.md); default: the sessions API's host, port 5222.
	ClientServer string
	// ClientTLS configures their STARTTLS (ServerName defaults to the
	// user's domain). Nil on a loopback ClientServer: no TLS.
	ClientTLS *tls.Config
	// ShadowContacts allows the shadow-contact fallback where neither the
	// overlay module nor an ejabberd calendar session is available: the
	// gateway then writes a "<name> (calendar)" item into the roster of
	// every contact of each person in a calendar state (XEP-0356 roster
	// permission both; see README.md). Off by default, since it changes
	// people's rosters; turned off again, the items are removed.
	ShadowContacts bool

	// Admins are the bare JIDs allowed the admin commands (resolve, sync).
	Admins []string
	// Visibility is what local users see of a person in lookups over
	// XMPP (web.SeeState, SeeStatus, SeeCalendar); remote JIDs see
	// nothing.
	Visibility web.Visibility
	// Lookup answers lookups (the same backend as the HTTP API); nil
	// turns the lookup IQ and the status command off.
	Lookup Lookup
	// Admin runs the admin commands; nil turns them off.
	Admin Admin
}

// Lookup resolves an address or JID to a person with presence, as the
// HTTP API does (web.Backend).
type Lookup interface {
	Lookup(email string) web.Entry
	LookupJID(jid string) web.Entry
}

// Admin runs the admin-only commands.
type Admin interface {
	// Explain resolves an address and says how (ldapmap's explanation).
	Explain(address string) string
	// Sync runs an incremental directory sync and summarises it.
	Sync(ctx context.Context) (string, error)
}

func (c *Config) defaults() error {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.SendRate <= 0 {
		c.SendRate = 200
	}
	if c.Burst <= 0 {
		c.Burst = 50
	}
	if c.ReconnectMax <= 0 {
		c.ReconnectMax = time.Minute
	}
	if c.Grace <= 0 {
		c.Grace = 2 * time.Minute
	}
	j, err := jid.Parse(c.JID)
	if err != nil || j.Localpart() != "" || j.Resourcepart() != "" {
		return fmt.Errorf("xmpp component jid %q: must be a bare domain", c.JID)
	}
	if len(c.Hosts) == 0 {
		_, parent, ok := strings.Cut(j.Domainpart(), ".")
		if !ok || !strings.Contains(parent, ".") && parent != "localhost" && !strings.HasSuffix(parent, "test") {
			return fmt.Errorf("xmpp hosts: cannot derive the users' domain from %q; configure hosts", c.JID)
		}
		c.Hosts = []string{parent}
	}
	return nil
}

// Bot is the running component. Make it with New, run it with Run.
type Bot struct {
	cfg    Config
	jid    jid.JID
	hosts  map[string]bool
	engine Engine
	dir    Directory
	log    *slog.Logger

	live *live
	pub  *publisher
	met  *metrics
	ans  *answers // lookups and commands (answer.go)
	// cal is the ejabberd fallback (fallback_session.go).
	cal *calendarSessions
	// shadow is the shadow-contact fallback (fallback_shadow.go).
	shadow *shadowContacts

	// probe is set by Probe: set up the link, report, hang up.
	probe bool

	mu    sync.Mutex
	conn  *conn // nil while disconnected
	state State
}

// State is what the component knows about its link, for doctor/readyz.
type State struct {
	Connected bool
	// Since is when the link last came up or went down.
	Since time.Time
	// Privileges are the XEP-0356 permissions the server granted
	// (access → type, e.g. presence → managed_entity).
	Privileges map[string]string
	// Overlay is true when the server has the overlay module.
	Overlay bool
	// Mechanism is how calendar states reach contacts: MechanismModule,
	// MechanismSession, MechanismShadow or MechanismNone (see README.md).
	Mechanism string
	// Off lists the features that are off for want of a permission or
	// the module, in words.
	Off []string
	// LastError is the last connection error.
	LastError string
}

// New makes a component; nothing connects until Run.
func New(cfg Config, engine Engine, dir Directory, st Store) (*Bot, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	j, _ := jid.Parse(cfg.JID)
	b := &Bot{cfg: cfg, jid: j, hosts: map[string]bool{}, engine: engine, dir: dir, log: cfg.Logger, met: newMetrics()}
	for _, h := range cfg.Hosts {
		b.hosts[strings.ToLower(h)] = true
	}
	b.live = newLive(b)
	b.ans = newAnswers(b)
	b.cal = newCalendarSessions(b)
	var err error
	if b.shadow, err = newShadowContacts(b, st); err != nil {
		return nil, err
	}
	if b.pub, err = newPublisher(b, st); err != nil {
		return nil, err
	}
	return b, nil
}

// Status reports the link's state.
func (b *Bot) Status() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.state
	s.Privileges = make(map[string]string, len(b.state.Privileges))
	for k, v := range b.state.Privileges {
		s.Privileges[k] = v
	}
	s.Off = append([]string(nil), b.state.Off...)
	return s
}

// Run connects and keeps the component connected until ctx ends,
// publishing the engine's changes meanwhile.
func (b *Bot) Run(ctx context.Context) {
	changes, stop := b.engine.Subscribe(4096)
	defer stop()
	// Wait for the helpers, so the last save of what was published is
	// done before the caller closes the store.
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { b.pub.follow(ctx, changes) })
	wg.Go(func() { b.live.run(ctx) })

	backoff := time.Second
	for ctx.Err() == nil {
		started := time.Now()
		err := b.session(ctx)
		if ctx.Err() != nil {
			return
		}
		b.met.reconnects.Inc()
		b.met.connected.Set(0)
		b.mu.Lock()
		b.state.Connected, b.state.Since = false, time.Now()
		if err != nil {
			b.state.LastError = err.Error()
		}
		b.mu.Unlock()
		if time.Since(started) > 30*time.Second {
			backoff = time.Second
		}
		b.log.Warn("xmpp component disconnected", "server", b.cfg.Server, "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, b.cfg.ReconnectMax)
	}
}

// session runs one connection from dial to its end.
func (b *Bot) session(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nc, err := (&net.Dialer{}).DialContext(dctx, "tcp", b.cfg.Server)
	if err != nil {
		return fmt.Errorf("dial %s: %w", b.cfg.Server, err)
	}
	// mellium does not abort a blocked read when ctx ends: a deadline
	// and closing the connection do.
	deadline, _ := dctx.Deadline()
	nc.SetDeadline(deadline)
	abort := context.AfterFunc(dctx, func() { nc.Close() })
	s, err := component.NewSession(dctx, b.jid, b.cfg.Secret, nc)
	if !abort() || err != nil {
		nc.Close()
		// The timeout, not the read it interrupted (the connection's
		// deadline may fire a moment before the context's).
		if e := dctx.Err(); e != nil {
			err = e
		} else if errors.Is(err, os.ErrDeadlineExceeded) {
			err = context.DeadlineExceeded
		}
		return fmt.Errorf("component handshake with %s as %s: %w", b.cfg.Server, b.jid, err)
	}
	nc.SetDeadline(time.Time{})
	c := &conn{bot: b, s: s, privileges: make(chan privAdvert, 1), done: make(chan struct{})}
	served := make(chan error, 1)
	if !b.probe {
		b.live.connecting()
	}
	go func() {
		served <- s.Serve(xmpp.HandlerFunc(c.handle))
		close(c.done)
	}()
	// Stop the session when ctx ends.
	stopOnCancel := context.AfterFunc(ctx, func() { s.Close(); nc.Close() })
	defer stopOnCancel()
	defer nc.Close()

	if err := c.setup(ctx); err != nil {
		s.Close()
		<-c.done
		return err
	}
	if b.probe {
		s.Close()
		<-c.done
		return nil
	}
	b.mu.Lock()
	b.conn = c
	b.mu.Unlock()
	b.pub.connected(c)

	err = <-served
	b.mu.Lock()
	b.conn = nil
	b.mu.Unlock()
	b.pub.disconnected()
	b.live.disconnected()
	if err == nil {
		err = errors.New("stream closed by the server")
	}
	return err
}

// conn is one live component stream.
type conn struct {
	bot        *Bot
	s          *xmpp.Session
	privileges chan privAdvert
	done       chan struct{}
	overlay    bool
	// mech publishes overlays; nil when the server offers no way.
	mech mechanism
	// since: every host's module takes scheduled overlays
	// (NSOverlaySince).
	since bool
	// listedNext are the scheduled overlays the module listed at connect.
	listedNext map[string]scheduled
}

// context is a context that ends when c does (or when cancel is
// called): for work that serves only this connection.
func (c *conn) context() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-c.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// setup reads the privilege advertisement and checks which hosts have
// the overlay module, then reports what that means.
func (c *conn) setup(ctx context.Context) error {
	b := c.bot
	var adv privAdvert
	select {
	case adv = <-c.privileges:
	case <-time.After(3 * time.Second):
		// No advertisement: the server granted nothing (or has no
		// XEP-0356 at all).
	case <-c.done:
		return errors.New("stream closed during set-up")
	case <-ctx.Done():
		return ctx.Err()
	}
	privs := adv.perms
	overlay := true
	for h := range b.hosts {
		ok, err := c.hasFeature(ctx, h, NSOverlay)
		if err != nil {
			return fmt.Errorf("disco#info %s: %w", h, err)
		}
		overlay = overlay && ok
	}
	c.overlay = overlay
	if overlay {
		c.since = true
		for h := range b.hosts {
			ok, err := c.hasFeature(ctx, h, NSOverlaySince)
			if err != nil {
				return fmt.Errorf("disco#info %s: %w", h, err)
			}
			c.since = c.since && ok
		}
	}
	mechName, instead := MechanismModule, ""
	if overlay {
		c.mech = moduleMechanism{c}
	} else if c.mech, instead = c.chooseFallback(ctx, adv); c.mech != nil {
		mechName = c.mech.name()
	} else {
		mechName = MechanismNone
	}
	if !b.probe {
		switch {
		case mechName == MechanismShadow:
			b.shadow.attach(ctx, c)
		case privs["roster"] == "both" || privs["roster"] == "set":
			// Shadow contacts are off on this connection: take out
			// the roster items an earlier one put in.
			go b.shadow.removeAll(c)
		}
	}
	var off []string
	if !overlay {
		off = append(off, "calendar presence for contacts: the overlay module is not loaded for this component on "+strings.Join(b.cfg.Hosts, ", ")+" (see configs/prosody or configs/ejabberd); "+instead)
	}
	switch privs["presence"] {
	case "managed_entity", "roster":
	default:
		off = append(off, "live presence for lookups: the server granted no XEP-0356 presence permission (want presence = managed_entity)")
	}
	b.mu.Lock()
	b.state = State{Connected: true, Since: time.Now(), Privileges: privs, Overlay: overlay, Mechanism: mechName, Off: off}
	b.mu.Unlock()
	b.met.setPrivileges(privs, overlay)
	b.met.setMechanism(mechName)
	b.log.Info("xmpp component connected", "server", b.cfg.Server, "jid", b.jid.String(), "privileges", privs, "overlay_module", overlay, "scheduled_overlays", c.since && !b.cfg.NoScheduled, "mechanism", mechName)
	for _, o := range off {
		b.log.Warn("xmpp feature off", "reason", o)
	}
	if _, ok := privs["presence"]; ok && !b.probe {
		// Prosody (privilege:2) sends everyone's current presence on
		// connect; ejabberd 23.01 (privilege:1) does not.
		snapshot := adv.ns == NSPrivilege2
		b.live.connected(snapshot)
		switch {
		case snapshot:
		case b.cfg.SessionsAPI != "":
			if err := b.live.seed(ctx, b.cfg.SessionsAPI); err != nil {
				b.log.Warn("xmpp: reading the online sessions failed; live presence fills in as people change it", "err", err)
			}
		default:
			b.log.Warn("xmpp: the server sends no presence snapshot on connect and no sessions_api is configured: people online before the component connected count as offline until they change their presence")
		}
	}
	return nil
}

// hasFeature asks a host's disco#info for a feature.
func (c *conn) hasFeature(ctx context.Context, host, feature string) (bool, error) {
	to, err := jid.Parse(host)
	if err != nil {
		return false, err
	}
	var info struct {
		Type     string `xml:"type,attr"`
		Features []struct {
			Var string `xml:"var,attr"`
		} `xml:"query>feature"`
	}
	if err := c.iq(ctx, stanza.IQ{To: to, Type: stanza.GetIQ}, xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: "http://jabber.org/protocol/disco#info", Local: "query"}}), &info); err != nil {
		return false, err
	}
	for _, f := range info.Features {
		if f.Var == feature {
			return true, nil
		}
	}
	return false, nil
}

// iq sends an IQ and decodes the reply into v; an error reply is
// returned as *stanza.Error.
func (c *conn) iq(ctx context.Context, iq stanza.IQ, payload xml.TokenReader, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	iq.From = c.bot.jid
	r, err := c.s.SendIQ(ctx, iq.Wrap(payload))
	if err != nil {
		return err
	}
	defer r.Close()
	d := xml.NewTokenDecoder(r)
	tok, err := d.Token()
	if err != nil {
		return fmt.Errorf("reading reply: %w", err)
	}
	start, ok := tok.(xml.StartElement)
	if !ok {
		return fmt.Errorf("reply starts with %T", tok)
	}
	var typ string
	for _, a := range start.Attr {
		if a.Name.Local == "type" {
			typ = a.Value
		}
	}
	if typ == "error" {
		var e struct {
			Err stanza.Error `xml:"error"`
		}
		if err := d.DecodeElement(&e, &start); err != nil {
			return fmt.Errorf("decoding error reply: %w", err)
		}
		return e.Err
	}
	if v == nil {
		return nil
	}
	if err := d.DecodeElement(v, &start); err != nil {
		return fmt.Errorf("decoding reply: %w", err)
	}
	return nil
}

// handle receives every stanza the server routes to the component.
func (c *conn) handle(rw xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	switch start.Name.Local {
	case "presence":
		for _, a := range start.Attr {
			if a.Name.Local == "to" && strings.Contains(a.Value, "@") {
				// To a shadow contact, not the component itself.
				return c.shadowPresence(rw, start, a.Value)
			}
		}
		return c.bot.live.handle(rw, start)
	case "message":
		return c.handleMessage(rw, start)
	case "iq":
		return c.bot.handleIQ(rw, start)
	}
	return nil
}

// privAdvert is a server's XEP-0356 permission advertisement.
type privAdvert struct {
	ns    string
	perms map[string]string // access → type
}

// handleMessage takes the privilege advertisement (a message from a
// host) and hands chat messages to the command handler.
func (c *conn) handleMessage(rw xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	var m struct {
		From      string `xml:"from,attr"`
		To        string `xml:"to,attr"`
		ID        string `xml:"id,attr"`
		Type      string `xml:"type,attr"`
		Body      string `xml:"body"`
		Privilege *struct {
			XMLName xml.Name
			Perms   []struct {
				Access string `xml:"access,attr"`
				Type   string `xml:"type,attr"`
			} `xml:"perm"`
		} `xml:"privilege"`
	}
	if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), rw)).Decode(&m); err != nil {
		return nil // a malformed message is dropped, never the stream
	}
	if m.Privilege != nil && c.bot.hosts[strings.ToLower(m.From)] {
		switch m.Privilege.XMLName.Space {
		case NSPrivilege1, NSPrivilege2:
			privs := map[string]string{}
			for _, p := range m.Privilege.Perms {
				privs[p.Access] = p.Type
			}
			select {
			case c.privileges <- privAdvert{ns: m.Privilege.XMLName.Space, perms: privs}:
			default:
			}
		}
		return nil
	}
	if strings.Contains(m.To, "@") {
		return c.bot.shadowMessage(rw, m.From, m.To, m.Type, m.Body)
	}
	return c.bot.handleChat(rw, m.From, m.ID, m.Type, m.Body)
}

// Namespaces the component speaks.
const (
	// NSOverlay is the overlay module's protocol (docs/overlay-protocol.md).
	NSOverlay = "urn:presencegw:overlay:0"
	// NSOverlaySince is the disco feature of a module that takes
	// scheduled overlays (the since attribute): an older module would
	// apply them at once, so they are sent only where it is advertised.
	NSOverlaySince = NSOverlay + "#since"
	// NSPrivilege1 is XEP-0356 as ejabberd 23.01 speaks it; NSPrivilege2
	// as Prosody's mod_privilege does.
	NSPrivilege1 = "urn:xmpp:privilege:1"
	NSPrivilege2 = "urn:xmpp:privilege:2"
)
