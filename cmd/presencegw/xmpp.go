package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/presencegw/presencegw/internal/config"
	"github.com/presencegw/presencegw/internal/presence"
	"github.com/presencegw/presencegw/internal/store"
	"github.com/presencegw/presencegw/ldapmap"
	"github.com/presencegw/presencegw/rules"
	"github.com/presencegw/presencegw/web"
	"github.com/presencegw/presencegw/xmppbot"
)

// The real parts are what the component asks for.
var (
	_ xmppbot.Engine    = (*presence.Engine)(nil)
	_ xmppbot.Store     = (*store.DB)(nil)
	_ xmppbot.Lookup    = backend{}
	_ xmppbot.Directory = botDirectory{}
	_ xmppbot.Admin     = botAdmin{}
)

// xmppConfig turns the xmpp section into the component's settings (its
// secret read now), without the parts only a running gateway has.
func xmppConfig(x *config.XMPP, log *slog.Logger) (xmppbot.Config, error) {
	secret, err := config.Secret(x.SecretFile, x.SecretEnv)
	if err != nil {
		return xmppbot.Config{}, fmt.Errorf("xmpp secret: %w", err)
	}
	if secret == "" {
		return xmppbot.Config{}, errors.New("xmpp secret: is empty")
	}
	vis, err := web.ParseVisibility(x.Visibility)
	if err != nil {
		return xmppbot.Config{}, fmt.Errorf("xmpp: %w", err)
	}
	clientTLS, err := xmppClientTLS(x)
	if err != nil {
		return xmppbot.Config{}, err
	}
	return xmppbot.Config{Server: x.Server, JID: x.JID, Secret: []byte(secret), Hosts: slices.Clone(x.Hosts),
		SendRate: x.SendRate, Burst: x.Burst, ReconnectMax: x.ReconnectMax.D(), Grace: x.Grace.D(),
		Admins: slices.Clone(x.Admins), Visibility: vis, SessionsAPI: x.SessionsAPI,
		ClientServer: x.ClientServer, ClientTLS: clientTLS, ShadowContacts: x.ShadowContacts,
		NoScheduled: x.ScheduledOverlays != nil && !*x.ScheduledOverlays, Logger: log}, nil
}

// xmppClientTLS is the calendar sessions' STARTTLS configuration: nil
// (the component's default) unless client_ca_file or client_tls_name is
// set; the CA file adds to the system's roots.
func xmppClientTLS(x *config.XMPP) (*tls.Config, error) {
	if x.ClientCAFile == "" && x.ClientTLSName == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: x.ClientTLSName}
	if x.ClientCAFile != "" {
		pool, err := rootsWith("xmpp client_ca_file", x.ClientCAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// newBot wires the XMPP component: the engine it publishes and feeds, the
// directory between mailboxes and JIDs, the store for what it published,
// the web layer's lookups and the admin commands. Nil when no xmpp
// section is configured.
func (a *app) newBot() (*xmppbot.Bot, error) {
	if a.cfg.XMPP == nil {
		return nil, nil
	}
	if a.presence == nil {
		return nil, errors.New("xmpp: no presence engine") // openPresence makes one for the component
	}
	xc, err := xmppConfig(a.cfg.XMPP, a.log)
	if err != nil {
		return nil, err
	}
	xc.Lookup = a.backend()
	xc.Admin = botAdmin{a: a}
	return xmppbot.New(xc, a.presence, botDirectory{dir: a.dir}, a.store)
}

// botDirectory maps between mailboxes and JIDs for the component.
type botDirectory struct{ dir *ldapmap.Directory }

// Generation changes with every new directory index: the component then
// re-reads everyone, since a JID may have changed.
func (d botDirectory) Generation() uint64 { return d.dir.Generation() }

// JIDOf is the JID the mailbox's address resolves to, when that address
// is the mailbox owner's (an address another person holds is not theirs
// to publish to).
func (d botDirectory) JIDOf(mailbox string) (string, bool) {
	r := d.dir.Resolve(mailbox)
	if r.Status != ldapmap.StatusResolved || r.JID == "" {
		return "", false
	}
	if r.Person != nil && r.Person.MailboxID != "" && !strings.EqualFold(r.Person.MailboxID, mailbox) {
		return "", false
	}
	return r.JID, true
}

// MailboxOf is the mailbox of the person a bare JID resolves to, lower
// case as the engine and the web layer key it.
func (d botDirectory) MailboxOf(bareJID string) (string, bool) {
	r := d.dir.ResolveJID(bareJID)
	if r.Status != ldapmap.StatusResolved || r.Person == nil || r.Person.MailboxID == "" {
		return "", false
	}
	return strings.ToLower(r.Person.MailboxID), true
}

// botAdmin runs the component's admin commands.
type botAdmin struct{ a *app }

// Explain is what 'presencegw resolve' prints for the address, with the
// person's presence as the running engine has it.
func (b botAdmin) Explain(address string) string {
	r := b.a.dir.Resolve(address)
	var pres *rules.Output
	if e := b.a.presence; e != nil && r.Person != nil && r.Person.MailboxID != "" {
		if out, ok := e.Get(r.Person.MailboxID); ok {
			pres = &out
		}
	}
	return explain(r, pres)
}

// Sync runs an incremental directory sync and summarises it, one line a
// source and one for the index.
func (b botAdmin) Sync(ctx context.Context) (string, error) {
	start := time.Now()
	results, err := b.a.dir.SyncIncremental(ctx)
	return syncSummary(b.a.dir, results, time.Since(start)), err
}

// syncSummary says what a sync did, in a few lines for a chat window.
func syncSummary(dir *ldapmap.Directory, results []ldapmap.SourceResult, took time.Duration) string {
	var sb strings.Builder
	for _, r := range results {
		if r.Err != nil {
			fmt.Fprintf(&sb, "%s: FAILED: %v (last good entries kept)\n", r.Source, r.Err)
			continue
		}
		if r.Full {
			fmt.Fprintf(&sb, "%s: full read, %d people, %d removed, %.2fs\n", r.Source, r.Stats.People, r.Removed, r.Duration.Seconds())
		} else {
			fmt.Fprintf(&sb, "%s: %d changed, %d removed, %.2fs\n", r.Source, r.Changed, r.Removed, r.Duration.Seconds())
		}
	}
	people, addrs := dir.Index().Len()
	conflicts := dir.Conflicts()
	unresolved := 0
	for _, c := range conflicts {
		if c.Winner < 0 {
			unresolved++
		}
	}
	fmt.Fprintf(&sb, "index: %d people, %d addresses, %d conflicts (%d unresolved), %.2fs", people, addrs, len(conflicts), unresolved, took.Seconds())
	return sb.String()
}

// explain is the resolve command's text for one address: the directory's
// explanation, then the person's presence when known.
func explain(r ldapmap.Resolution, pres *rules.Output) string {
	s := r.String()
	if pres != nil {
		line := string(pres.State)
		if pres.Status != "" {
			line += " · " + pres.Status
		}
		s += fmt.Sprintf("  %-11s %s (%s)\n", "presence:", line, pres.Source)
	}
	return s
}

// xmppProbeTimeout bounds doctor's XMPP check: a handshake, the
// permission advertisement (up to 3 s when the server sends none) and a
// disco#info per host.
var xmppProbeTimeout = 5 * time.Second

// probeXMPP connects once as the configured component and reports what
// the server granted, then hangs up (xmppbot.Probe), within timeout.
func probeXMPP(ctx context.Context, xc xmppbot.Config, timeout time.Duration) (xmppbot.State, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := xmppbot.Probe(ctx, xc)
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no component handshake with %s within %s", xc.Server, timeout)
	}
	return st, err
}

// doctorXMPP checks the XMPP component's link for doctor; false when it
// failed.
func (a *app) doctorXMPP(ctx context.Context, out io.Writer) bool {
	x := a.cfg.XMPP
	if x == nil {
		fmt.Fprintln(out, "xmpp: not configured (no xmpp section: no component)")
		return true
	}
	name := fmt.Sprintf("xmpp %s at %s", x.JID, x.Server)
	xc, err := xmppConfig(x, a.log)
	if err != nil {
		fmt.Fprintf(out, "%s: FAILED: %v\n", name, err)
		return false
	}
	st, err := probeXMPP(ctx, xc, xmppProbeTimeout)
	if err != nil {
		msg := err.Error()
		if strings.Contains(msg, "conflict") {
			msg += " (is the gateway running and connected already? the server lets one component connection in)"
		}
		fmt.Fprintf(out, "%s: FAILED: %s\n", name, msg)
		return false
	}
	fmt.Fprintf(out, "%s: connected\n", name)
	perms := "none"
	if len(st.Privileges) > 0 {
		var l []string
		for _, k := range slices.Sorted(maps.Keys(st.Privileges)) {
			l = append(l, k+"="+st.Privileges[k])
		}
		perms = strings.Join(l, ", ")
	}
	fmt.Fprintf(out, "xmpp permissions (XEP-0356): %s\n", perms)
	hosts := strings.Join(x.Hosts, ", ")
	if st.Overlay {
		fmt.Fprintf(out, "xmpp overlay module: answered on %s\n", hosts)
	} else {
		fmt.Fprintf(out, "xmpp overlay module: did not answer on %s\n", hosts)
	}
	fmt.Fprintf(out, "xmpp calendar presence for contacts: %s\n", st.Mechanism)
	for _, o := range st.Off {
		fmt.Fprintf(out, "xmpp feature off: %s\n", o)
	}
	if len(st.Off) == 0 {
		fmt.Fprintln(out, "xmpp features: all on")
	}
	return true
}
