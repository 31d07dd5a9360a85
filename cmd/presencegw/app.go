package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/presencegw/presencegw/internal/config"
	"github.com/presencegw/presencegw/internal/presence"
	"github.com/presencegw/presencegw/internal/store"
	"github.com/presencegw/presencegw/ldapmap"
	"github.com/presencegw/presencegw/web"
	"github.com/presencegw/presencegw/xmppbot"
)

// demoPeople is the directory of the demo: a few people of a made-up
// company, with an alias, a conflict and a disabled account to explore.
//
//go:embed demo-people.yaml
var demoPeople []byte

// app is a wired gateway: configuration, store and directory.
type app struct {
	cfg   *config.Config
	log   *slog.Logger
	store *store.DB
	dir   *ldapmap.Directory
	ldap  []*ldapmap.LDAPSource
	demo  bool
	// presence is nil without a calendar source and without an XMPP
	// component; calendar is nil without a calendar source.
	presence *presence.Engine
	calendar presence.CalendarSource
}

// loadConfig loads the file, or the demo defaults when path is empty.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Defaults(), nil
	}
	return config.Load(path, ldapmap.CheckLDAPConfig, checkPolicy, checkCalendar)
}

// openApp wires the directory over the configured sources and the store.
// With no config file it is the demo: embedded people, in-memory store.
func openApp(cfg *config.Config, demo bool, log *slog.Logger) (*app, error) {
	a := &app{cfg: cfg, log: log, demo: demo}
	var sources []ldapmap.Source
	if a.demo {
		sources = append(sources, ldapmap.NewFileSourceData("demo", 0, nil, "demo-people.yaml", demoPeople))
	}
	for _, l := range cfg.LDAP {
		s, err := ldapmap.NewLDAPSource(l, log)
		if err != nil {
			return nil, err
		}
		a.ldap = append(a.ldap, s)
		sources = append(sources, s)
	}
	for _, f := range cfg.Files {
		sources = append(sources, ldapmap.NewFileSource(f.Name, f.Priority, f.Domains, f.Path))
	}
	storePath := cfg.Store
	if a.demo {
		storePath = ":memory:"
	}
	if storePath == "" {
		return nil, fmt.Errorf("%s: store: is required (path of the state database, e.g. /var/lib/presencegw/state.db)", cfg.Path())
	}
	var err error
	a.store, err = store.Open(storePath)
	if err != nil {
		return nil, err
	}
	a.dir, err = ldapmap.New(sources, a.store, log)
	if err != nil {
		a.store.Close()
		return nil, err
	}
	if err := a.openPresence(); err != nil {
		a.store.Close()
		return nil, err
	}
	return a, nil
}

// openPresence makes the presence engine, tracking every mailbox the
// directory resolves to, when something feeds it: a calendar source, the
// XMPP component's live presence, or both. Live presence alone still
// answers lookups; only a calendar source has a poller (a.calendar).
func (a *app) openPresence() error {
	src, err := calendarSource(a.cfg, a.demo, a.log)
	if err != nil {
		return err
	}
	if src == nil && a.cfg.XMPP == nil {
		return nil
	}
	pol, err := policyFrom(a.cfg.Policy)
	if err != nil {
		return err
	}
	if a.demo {
		pol.AllDay = true // show erin's all-day event
	}
	c := a.cfg.Calendar
	a.presence, err = presence.New(pol, presence.Options{PollInterval: c.PollInterval.D(), AutoReplyInterval: c.AutoReplyInterval.D(),
		LookAhead: c.LookAhead.D(), MailboxRetry: c.MailboxRetry.D()}, a.store, a.log)
	if err != nil {
		return err
	}
	a.calendar = src
	rc, _ := src.(*routedCalendar)
	a.dir.OnRebuild(func(ix *ldapmap.Index) {
		// Routes first: the poller must not ask a source for a mailbox
		// another serves.
		if rc != nil {
			rc.Update(ix)
		}
		a.presence.Track(ix.Mailboxes())
	})
	return nil
}

// backend is the web layer's (and the XMPP component's) view of the
// directory and the engine.
func (a *app) backend() backend {
	return backend{dir: a.dir, presence: a.presence, noCalendar: a.calendar == nil}
}

func (a *app) close() {
	if err := a.store.Close(); err != nil {
		a.log.Error("closing store", "err", err)
	}
}

func runServe(ctx context.Context, args []string, _, errOut io.Writer) error {
	fs := newFlags("serve", errOut)
	path := fs.String("c", "", "configuration file (YAML)")
	listen := fs.String("listen", "", "HTTP listen address (overrides the config's listen)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return fmt.Errorf("%w: -c FILE is required (or run 'presencegw demo')", errUsage)
	}
	return serve(ctx, *path, *listen, errOut)
}

func runDemo(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlags("demo", errOut)
	listen := fs.String("listen", "127.0.0.1:8080", "HTTP listen address")
	withXMPP := fs.Bool("xmpp", false, "also run a private Prosody (Debian packages prosody, prosody-modules) with the demo people as users\n"+
		"(password = user name) and the gateway's XMPP component: log in as bob@"+demoChatDomain+" / bob at 127.0.0.1.\n"+
		"It listens on 127.0.0.1 only, which is why it allows plain-text passwords without TLS")
	xmppPort := fs.Int("xmpp-port", 5222, "with --xmpp: the client (c2s) port of the private Prosody on 127.0.0.1")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *withXMPP {
		return runDemoXMPP(ctx, *listen, *xmppPort, out, errOut)
	}
	return serve(ctx, "", *listen, errOut)
}

// serve runs the gateway until ctx ends, then shuts down gracefully:
// in-flight requests get ten seconds, syncs, the poller and the XMPP
// component are stopped and waited for, the store is closed last.
func serve(ctx context.Context, path, listen string, errOut io.Writer) error {
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	log := newLogger(errOut, cfg.Log.Format, cfg.Log.Level)
	return serveConfig(ctx, cfg, path == "", listen, log, nil)
}

// serveConfig is serve on a loaded configuration (the demo's when demo).
// onBot, when not nil, is given the XMPP component before it starts.
func serveConfig(ctx context.Context, cfg *config.Config, demo bool, listen string, log *slog.Logger, onBot func(*xmppbot.Bot)) error {
	a, err := openApp(cfg, demo, log)
	if err != nil {
		return err
	}
	defer a.close()
	if listen == "" {
		listen = a.cfg.Listen
	}
	keepGCHeadroom()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := a.dir.RegisterMetrics(reg); err != nil {
		return err
	}
	if a.presence != nil {
		if err := a.presence.RegisterMetrics(reg); err != nil {
			return err
		}
	}
	if m, ok := a.calendar.(interface {
		RegisterMetrics(prometheus.Registerer) error
	}); ok {
		if err := m.RegisterMetrics(reg); err != nil {
			return err
		}
	}
	bot, err := a.newBot()
	if err != nil {
		return err
	}
	if bot != nil {
		if err := bot.RegisterMetrics(reg); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	webCtx, stopWeb := context.WithCancel(ctx)
	defer stopWeb()
	opts, err := webOptions(webCtx, cfg.Web, a.demo, log)
	if err != nil {
		return err
	}
	handler, err := web.New(opts, a.backend(), a.ready, reg, reg)
	if err != nil {
		return err
	}
	defer handler.Close()
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dirDone := make(chan struct{})
	pollDone := make(chan struct{})
	go func() {
		defer close(dirDone)
		a.dir.Run(ctx, ldapmap.Schedule{Incremental: cfg.Directory.IncrementalInterval.D(), Full: cfg.Directory.FullInterval.D()})
	}()
	if a.presence != nil {
		changes, stop := a.presence.Subscribe(1024)
		defer stop()
		go logChanges(log, changes)
	}
	if a.calendar != nil {
		go func() {
			defer close(pollDone)
			a.presence.Run(ctx, a.calendar)
		}()
	} else {
		close(pollDone)
	}
	// The component is not part of /readyz: a chat server outage must not
	// take the HTTP API out of rotation. doctor and the metrics report it.
	botDone := make(chan struct{})
	if bot != nil {
		if onBot != nil {
			onBot(bot)
		}
		log.Info("xmpp component starting", "server", cfg.XMPP.Server, "jid", cfg.XMPP.JID, "hosts", cfg.XMPP.Hosts)
		go func() {
			defer close(botDone)
			bot.Run(ctx)
		}()
	} else {
		close(botDone)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("presencegw listening", "addr", ln.Addr().String(), "version", version(), "demo", a.demo)
	if a.demo {
		log.Info("demo directory loaded; try: presencegw resolve alice@example.com")
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-serveErr:
		cancel()
		<-dirDone
		<-pollDone
		<-botDone
		return fmt.Errorf("http server: %w", err)
	}
	shutdownCtx, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	err = srv.Shutdown(shutdownCtx)
	cancel()
	<-dirDone
	<-pollDone
	<-botDone
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// logChanges logs every presence change: what the gateway will publish.
func logChanges(log *slog.Logger, changes <-chan presence.Change) {
	for c := range changes {
		log.Info("presence changed", "mailbox", c.Mailbox, "state", c.Output.State, "status", c.Output.Status, "source", c.Output.Source)
	}
}

// ready is /readyz: every source has been read at least once (now or
// before a restart, from the store).
func (a *app) ready() error {
	var errs []error
	for _, h := range a.dir.Health() {
		if h.LastFull.IsZero() {
			msg := "not synced yet"
			if h.Error != "" {
				msg = h.Error
			}
			errs = append(errs, fmt.Errorf("directory %s: %s", h.Source, msg))
		}
	}
	// A calendar source that has never answered for any mailbox (wrong
	// credentials, missing permission, unreachable) leaves lookups without
	// calendars: not ready. A later outage keeps the facts read before and
	// shows in the stale gauge instead, so readiness does not flap with it.
	// With several sources each one is asked for separately, so a broken
	// one is not hidden by a working one. Every configured source sits
	// behind the router; the demo's built-in calendar cannot fail.
	if rc, ok := a.calendar.(*routedCalendar); ok {
		unread := rc.Unread()
		for _, name := range slices.Sorted(maps.Keys(unread)) {
			errs = append(errs, fmt.Errorf("calendar source %s: none of its %d mailboxes read yet (see the log and presencegw_calendar_source_calls_total)", name, unread[name]))
		}
	}
	return errors.Join(errs...)
}
