package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/presencegw/presencegw/internal/config"
	"github.com/presencegw/presencegw/internal/presence"
	"github.com/presencegw/presencegw/ldapmap"
	"github.com/presencegw/presencegw/rules"
	"github.com/presencegw/presencegw/web"
)

// backend answers the web layer from the directory and the presence
// engine: the one place that knows both.
type backend struct {
	dir      *ldapmap.Directory
	presence *presence.Engine // nil without a calendar source and an XMPP component
	// noCalendar is set when only live chat presence feeds the engine:
	// there are then no calendar facts that could be stale.
	noCalendar bool
}

// Lookup implements web.Backend.
func (b backend) Lookup(email string) web.Entry { return b.entry(b.dir.Resolve(email)) }

// Version lets the web server reuse rendered answers until the directory
// or a presence changes. Both counters only grow, so their sum changes
// whenever either does.
func (b backend) Version() uint64 {
	v := b.dir.Generation()
	if b.presence != nil {
		v += b.presence.Version()
	}
	return v
}

// LookupJID implements web.Backend: the person of the addresses that
// resolve to the JID; Email is the one that stands for it.
func (b backend) LookupJID(jid string) web.Entry { return b.entry(b.dir.ResolveJID(jid)) }

// entry is a resolution's answer, with the person's presence.
func (b backend) entry(r ldapmap.Resolution) web.Entry {
	switch r.Status {
	case ldapmap.StatusInvalid:
		return web.Entry{Email: r.Query, Status: web.Invalid, Err: r.Error}
	case ldapmap.StatusResolved:
	default:
		return web.Entry{Email: r.Address, Status: web.NotFound}
	}
	e := web.Entry{Email: r.Address, Status: web.Found, JID: r.JID, Presence: rules.Output{State: rules.Unknown}}
	if r.Person != nil {
		e.Name, e.Mailbox = r.Person.Name, strings.ToLower(r.Person.MailboxID)
		if b.presence != nil && r.Person.MailboxID != "" {
			if out, changed, stale, ok := b.presence.Lookup(r.Person.MailboxID); ok {
				e.Presence, e.Updated, e.Stale = out, changed, stale && !b.noCalendar
				e.Chat = b.presence.Chat(r.Person.MailboxID)
			}
		}
	}
	return e
}

// Changes implements web.Backend: the engine's changes, by mailbox.
func (b backend) Changes(buffer int) (<-chan string, func()) {
	out := make(chan string, buffer)
	if b.presence == nil {
		return out, func() {}
	}
	src, stop := b.presence.Subscribe(buffer)
	go func() {
		defer close(out)
		for c := range src {
			out <- c.Mailbox
		}
	}()
	return out, stop
}

// webOptions turns the web config into the server's options. The demo
// opens its presence API to anonymous callers (its people are made up),
// so a newcomer can try every endpoint with curl. ctx bounds the Entra ID
// verifier's background key refreshes; log gets its fetch failures.
func webOptions(ctx context.Context, c config.Web, demo bool, log *slog.Logger) (web.Options, error) {
	o := web.Options{Anonymous: c.Anonymous, CORSOrigins: c.CORSOrigins, MaxBatch: c.MaxBatch,
		RatePerSecond: c.RatePerSecond, Burst: c.Burst,
		Openfire: web.OpenfireOptions{Public: c.Openfire.Mode == "public", UnavailableText: c.Openfire.UnavailableText, ImageHosts: c.Openfire.ImageHosts}}
	var err error
	if o.AnonymousVisibility, err = web.ParseVisibility(c.AnonymousVisibility); err != nil {
		return o, err
	}
	for _, k := range c.APIKeys {
		v, err := web.ParseVisibility(k.Visibility)
		if err != nil {
			return o, err
		}
		o.APIKeys = append(o.APIKeys, web.APIKey{Name: k.Name, SHA256: k.SHA256, Visibility: v})
	}
	if e := c.Entra; e != nil {
		v, err := web.ParseVisibility(e.Visibility)
		if err != nil {
			return o, err
		}
		// Fetches nothing yet: each tenant's keys come with its first token.
		o.Entra, err = web.NewEntra(ctx, web.EntraConfig{Tenants: e.Tenants, Audiences: e.Audiences, Scope: e.Scope,
			Authority: e.Authority, ClientApps: e.ClientApps, Visibility: v, Logger: log})
		if err != nil {
			return o, err
		}
	}
	if k := c.Kopano; k != nil {
		secret, err := config.Secret(k.SecretFile, k.SecretEnv)
		if err != nil {
			return o, fmt.Errorf("kopano secret: %w", err)
		}
		v, err := web.ParseVisibility(k.Visibility)
		if err != nil {
			return o, err
		}
		if o.Kopano, err = web.NewKopano(web.KopanoConfig{Secret: []byte(secret), TokenExpire: k.TokenExpire.D(),
			SpreedTimeout: k.SpreedTimeout.D(), Visibility: v}); err != nil {
			return o, err
		}
	}
	if a := c.Addin; a != nil {
		o.Addin = addinOptions(a, c.Entra)
	}
	if demo {
		// The demo's people are made up: every endpoint is open, with a
		// generous rate so load tests measure the gateway, not the limit.
		// Its Openfire endpoint is public: no anonymous caller could
		// prove a req_jid.
		o.Anonymous, o.AnonymousVisibility = []string{"presence", "stream", "badge", "openfire"}, web.SeeCalendar
		o.Openfire.Public = true
		o.RatePerSecond, o.Burst = 100000, 100000
		if o.Addin == nil {
			o.Addin = &web.AddinOptions{} // manifest for the URL the demo is reached at
		}
	}
	return o, nil
}
