package xmppbot_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/presencegw/presencegw/internal/presence"
	"github.com/presencegw/presencegw/internal/store"
	"github.com/presencegw/presencegw/internal/testenv"
	"github.com/presencegw/presencegw/rules"
	"github.com/presencegw/presencegw/xmppbot"
)

// The shared-boundary benchmark (scripts/bench-xmpp): N users online on
// one local server (default 10,000; PRESENCEGW_BENCH_XMPP_USERS), each
// with the 2k nearest users of a ring as roster contacts (k = bpRing,
// subscription both), each logged in once from this process; every
// user's client is an observer of its contacts. In each run, C users
// (all, or every N/C-th) have a meeting starting at the same instant T
// and the component sends overlays at rate R per second
// (PRESENCEGW_BENCH_XMPP_RUNS, a list of C@R or none, default bpDefaultRuns;
// 200/s is the component's default rate). The component sends each
// meeting ahead as a scheduled overlay (since = T) where the module takes
// them, so T is set far enough ahead for that (C/R × 1.2 + 10 s); a run
// written C@R:now sends at T only (xmppbot.Config.NoScheduled), as before
// scheduled overlays, with T 3 s ahead. Measured: from T, when each
// observer has received the overlaid dnd presence of each changing
// contact (p50, p99, max, count), and the server's CPU time meanwhile.
// For comparison all N users then broadcast the same dnd presence
// themselves (no overlay): the server's CPU per delivered presence of an
// ordinary broadcast. Figures print as metrics and a table.

const (
	bpRing             = 2  // contacts u(i±1) … u(i±bpRing)
	bpLoginConcurrency = 32 // logins in flight
	bpDefaultUsers     = 10000
	bpDefaultRuns      = "all@200,all@200:now,all@1000,1000@200"
	bpBusyPrefix       = "In a meeting until "
)

// bpServers are the servers the benchmark runs on
// (PRESENCEGW_BENCH_XMPP_SERVERS, a list, default prosody).
var bpServers = map[string]func(testing.TB, testenv.XMPPOptions) *testenv.XMPPServer{
	"prosody":  testenv.StartProsody,
	"ejabberd": testenv.StartEjabberd,
}

func BenchmarkBoundaryPresence(b *testing.B) {
	users := bpEnvInt(b, "PRESENCEGW_BENCH_XMPP_USERS", bpDefaultUsers, 2*bpRing+1)
	var runs []bpSpec
	for _, f := range strings.Split(bpEnv("PRESENCEGW_BENCH_XMPP_RUNS", bpDefaultRuns), ",") {
		if f == "none" {
			break
		}
		f = strings.TrimSpace(f)
		spec := bpSpec{changing: users}
		if g, ok := strings.CutSuffix(f, ":now"); ok {
			f, spec.now = g, true
		}
		c, r, _ := strings.Cut(f, "@")
		var err1, err2 error
		if c != "all" {
			spec.changing, err1 = strconv.Atoi(c)
		}
		spec.rate, err2 = strconv.ParseFloat(r, 64)
		if err1 != nil || err2 != nil || spec.changing < 1 || spec.changing > users || spec.rate <= 0 {
			b.Fatalf("PRESENCEGW_BENCH_XMPP_RUNS: %q is not CHANGING@RATE (CHANGING all or 1…%d, RATE > 0)", f, users)
		}
		runs = append(runs, spec)
	}
	bpRaiseFDLimit(b, users)
	for _, name := range strings.Split(bpEnv("PRESENCEGW_BENCH_XMPP_SERVERS", "prosody"), ",") {
		start, ok := bpServers[name]
		if !ok {
			b.Fatalf("PRESENCEGW_BENCH_XMPP_SERVERS: no server %q", name)
		}
		b.Run(name, func(b *testing.B) { bpRun(b, start, users, runs) })
	}
}

func bpEnv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// bpEnvInt is a number from the environment, at least least.
func bpEnvInt(b *testing.B, name string, def, least int) int {
	n, err := strconv.Atoi(bpEnv(name, strconv.Itoa(def)))
	if err != nil || n < least {
		b.Fatalf("%s: want a number ≥ %d", name, least)
	}
	return n
}

// bpRaiseFDLimit lifts this process's open-file limit to the hard limit
// (the server started afterwards inherits it: Go passes a limit set with
// Setrlimit on to children). Each side holds one socket per user.
func bpRaiseFDLimit(b *testing.B, users int) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	if need := uint64(users) + 512; lim.Cur < need {
		b.Fatalf("open-file limit %d, need %d for %d users: raise the hard limit (ulimit -Hn)", lim.Cur, need, users)
	}
}

// bpOpenFileLimit is a process's soft open-file limit (/proc/PID/limits),
// 0 if unknown.
func bpOpenFileLimit(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				if f[0] == "unlimited" {
					return 1 << 30
				}
				n, _ := strconv.Atoi(f[0])
				return n
			}
		}
	}
	return 0
}

// bpSpec is one run: changing users' meetings start at T, the
// component sends at rate.
type bpSpec struct {
	changing int
	rate     float64
	now      bool // NoScheduled: every overlay sent at T
}

// bpCalendar gives the same events to the mailboxes in who (all if nil).
type bpCalendar struct {
	mu     sync.Mutex
	events []rules.Event
	who    map[string]bool
}

func (c *bpCalendar) set(events []rules.Event, who map[string]bool) {
	c.mu.Lock()
	c.events, c.who = events, who
	c.mu.Unlock()
}

func (c *bpCalendar) BatchSizes() (int, int) { return 500, 500 }

func (c *bpCalendar) Schedules(_ context.Context, mailboxes []string, _, _ time.Time) ([]rules.MailboxFacts, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]rules.MailboxFacts, len(mailboxes))
	for i, m := range mailboxes {
		out[i] = rules.MailboxFacts{Mailbox: m, Location: time.UTC}
		if c.who == nil || c.who[m] {
			out[i].Events = c.events
		}
	}
	return out, nil
}

func (c *bpCalendar) AutoReplies(_ context.Context, mailboxes []string) ([]rules.MailboxFacts, error) {
	out := make([]rules.MailboxFacts, len(mailboxes))
	for i, m := range mailboxes {
		out[i] = rules.MailboxFacts{Mailbox: m, AutoReply: rules.AutoReply{Status: rules.AutoReplyDisabled}}
	}
	return out, nil
}

// bpDirectory maps uNNNNN@example.com ↔ uNNNNN@<server domain>.
type bpDirectory struct{ domain string }

func (d bpDirectory) JIDOf(mailbox string) (string, bool) {
	local, ok := strings.CutSuffix(mailbox, "@example.com")
	return local + "@" + d.domain, ok
}

func (d bpDirectory) MailboxOf(bare string) (string, bool) {
	local, ok := strings.CutSuffix(bare, "@"+d.domain)
	return local + "@example.com", ok
}

func bpUser(i int) string { return fmt.Sprintf("u%05d", i) }

// bpIndex is the user number of a JID uNNNNN@…, -1 for anything else.
func bpIndex(j string) int {
	at := strings.IndexByte(j, '@')
	if at < 2 || j[0] != 'u' {
		return -1
	}
	n, err := strconv.Atoi(j[1:at])
	if err != nil {
		return -1
	}
	return n
}

// Phases: what an observer waits for from each contact.
const (
	phaseOff   = iota
	phaseDND   // available presence with show dnd
	phaseAvail // available presence without dnd
)

// bpObservers records, per observer and contact, when the observer
// first received what the phase waits for: 2k slots per observer, no
// stanzas kept.
type bpObservers struct {
	n        int
	phase    atomic.Int32
	at       []atomic.Int64 // UnixNano, 0 = not yet; index observer*2k + slot
	matched  atomic.Int64
	expected atomic.Int64 // how many arrivals the phase waits for
	// Counted while a phase is on: presences from contacts, available
	// dnd ones among them, dnd ones without the calendar text.
	received, dnd, badStatus atomic.Int64
}

func newObservers(n int) *bpObservers {
	return &bpObservers{n: n, at: make([]atomic.Int64, n*2*bpRing)}
}

// slot is contact c's place among observer i's contacts, -1 if none.
func (o *bpObservers) slot(i, c int) int {
	d := ((c-i)%o.n + o.n) % o.n
	switch {
	case d >= 1 && d <= bpRing:
		return d - 1
	case d >= o.n-bpRing:
		return bpRing + o.n - d - 1
	}
	return -1
}

func (o *bpObservers) total() int { return o.n * 2 * bpRing }

// arm starts a phase that waits for expected arrivals, forgetting the
// last one's.
func (o *bpObservers) arm(phase int32, expected int) {
	o.phase.Store(phaseOff)
	for i := range o.at {
		o.at[i].Store(0)
	}
	o.matched.Store(0)
	o.received.Store(0)
	o.dnd.Store(0)
	o.badStatus.Store(0)
	o.expected.Store(int64(expected))
	o.phase.Store(phase)
}

// on takes a presence that observer i received.
func (o *bpObservers) on(i int, p testenv.LitePresence) {
	phase := o.phase.Load()
	if phase == phaseOff {
		return
	}
	s := o.slot(i, bpIndex(p.From))
	if s < 0 {
		return
	}
	o.received.Add(1)
	if p.Type != "" {
		return
	}
	hit := p.Show == "dnd"
	if hit {
		o.dnd.Add(1)
		if !strings.HasPrefix(p.Status, bpBusyPrefix) {
			o.badStatus.Add(1)
		}
	}
	if phase == phaseAvail {
		hit = !hit
	}
	if hit && o.at[i*2*bpRing+s].CompareAndSwap(0, time.Now().UnixNano()) {
		o.matched.Add(1)
	}
}

// bpStall is how long a phase may see nothing arrive before waiting for
// the rest is given up: a presence that does not come within it never
// comes (the component lost the change).
const bpStall = 15 * time.Second

// wait waits until the phase's expected arrivals are in, until
// deadline, or until nothing arrived for bpStall after the first; it
// returns when the last arrived.
func (o *bpObservers) wait(deadline time.Time) (last time.Time, complete bool) {
	seen, progress := o.matched.Load(), time.Now()
	for time.Now().Before(deadline) {
		m := o.matched.Load()
		if m >= o.expected.Load() {
			break
		}
		if m != seen {
			seen, progress = m, time.Now()
		} else if m > 0 && time.Since(progress) > bpStall {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var latest int64
	for i := range o.at {
		latest = max(latest, o.at[i].Load())
	}
	return time.Unix(0, latest), o.matched.Load() >= o.expected.Load()
}

// latencies are the arrivals' delays after t0, sorted.
func (o *bpObservers) latencies(t0 time.Time) []time.Duration {
	var ds []time.Duration
	for i := range o.at {
		if at := o.at[i].Load(); at != 0 {
			ds = append(ds, time.Unix(0, at).Sub(t0))
		}
	}
	slices.Sort(ds)
	return ds
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[min(len(ds)-1, int(float64(len(ds))*p))]
}

// bpWorld is the server with N logged-in users, the engine and its
// calendar; the component is started per run.
type bpWorld struct {
	srv     *testenv.XMPPServer
	n       int
	cal     *bpCalendar
	engine  *presence.Engine
	engReg  *prometheus.Registry
	db      *store.DB
	obs     *bpObservers
	clients []*testenv.LiteClient
}

// bpResult is one boundary's figures.
type bpResult struct {
	name              string
	changing          int
	rate              float64       // 0 for the users' own broadcast
	sent              time.Duration // T → the component's last set acknowledged
	lat               []time.Duration
	expected          int
	dnd, bad          int64
	last              time.Duration // T → the last contact-visible presence
	cpu               bpCPU         // during T → last
	requests, dropped float64
	withdraw          time.Duration // after the component left: all back to available
	ahead             float64       // scheduled overlays accepted before T
}

func bpRun(b *testing.B, start func(testing.TB, testenv.XMPPOptions) *testenv.XMPPServer, n int, runs []bpSpec) {
	w := &bpWorld{n: n, cal: &bpCalendar{}, obs: newObservers(n)}
	w.srv = start(b, testenv.XMPPOptions{GracePeriod: time.Second})
	w.srv.SetLogLevel(b, "info")
	if w.srv.Kind == "ejabberd" {
		// Its caches hold 1000 entries by default: with more users every
		// roster lookup misses. The roster item cache holds one entry per
		// contact. PRESENCEGW_BENCH_XMPP_EJABBERD_CACHE=0 keeps the default.
		if size := bpEnvInt(b, "PRESENCEGW_BENCH_XMPP_EJABBERD_CACHE", (2*bpRing+1)*n, 0); size > 0 {
			w.srv.SetCacheSize(b, size)
			b.Logf("ejabberd: cache_size %d", size)
		}
	}
	if lim := bpOpenFileLimit(w.srv.PID()); lim < w.n+100 {
		b.Fatalf("%s may open only %d files, needs %d for %d users", w.srv.Kind, lim, w.n+100, w.n)
	} else {
		b.Logf("%s: open-file limit %d", w.srv.Kind, lim)
	}
	began := time.Now()
	contacts := make(map[string][]string, n)
	for i := range n {
		for d := 1; d <= bpRing; d++ {
			contacts[bpUser(i)] = append(contacts[bpUser(i)], bpUser((i+d)%n), bpUser((i-d+n)%n))
		}
	}
	w.srv.BulkRegister(b, contacts)
	b.Logf("%s: %d accounts and rosters written in %v", w.srv.Kind, n, time.Since(began).Round(time.Millisecond))

	var err error
	if w.db, err = store.Open(":memory:"); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.db.Close() })
	if w.engine, err = presence.New(rules.DefaultPolicy(), presence.Options{}, w.db, slog.New(slog.DiscardHandler)); err != nil {
		b.Fatal(err)
	}
	w.engReg = prometheus.NewRegistry()
	if err := w.engine.RegisterMetrics(w.engReg); err != nil {
		b.Fatal(err)
	}
	mbs := make([]string, n)
	for i := range mbs {
		mbs[i] = bpUser(i) + "@example.com"
	}
	w.engine.Track(mbs)
	w.refresh(b)

	cpu0 := w.cpuNow(b)
	login, settled, heap := w.login(b)
	cpu := w.cpuNow(b).sub(cpu0)
	b.Logf("%s: %d users logged in (%d at a time) in %v (%.0f/s); every contact's presence seen after %v; server CPU %v (%.1f ms per login), this process %v, others %v; client heap %.1f KiB per session",
		w.srv.Kind, n, bpLoginConcurrency, login.Round(time.Millisecond), float64(n)/login.Seconds(), settled.Round(time.Millisecond),
		cpu.server.Round(time.Millisecond), float64(cpu.server.Microseconds())/1000/float64(n), cpu.self.Round(time.Millisecond), cpu.others().Round(time.Millisecond), heap/1024)

	var results []bpResult
	for _, spec := range runs {
		b.Run(spec.name(), func(b *testing.B) {
			var r bpResult
			for range b.N {
				r = w.boundary(b, spec)
			}
			r.report(b)
			results = append(results, r)
		})
	}
	b.Run("self-broadcast", func(b *testing.B) {
		var r bpResult
		for range b.N {
			r = w.selfBroadcast(b)
		}
		r.report(b)
		results = append(results, r)
	})
	w.summary(b, results, login, settled)
}

func (s bpSpec) name() string {
	n := fmt.Sprintf("%d@%g", s.changing, s.rate)
	if s.now {
		n += ":now"
	}
	return n
}

// refresh makes the engine read the calendar now.
func (w *bpWorld) refresh(b *testing.B) {
	if err := w.engine.Refresh(context.Background(), w.cal); err != nil {
		b.Fatal(err)
	}
}

// login logs every user in, bpLoginConcurrency at a time, each asking
// for its roster and sending initial presence, and waits until every
// observer has seen every contact available.
func (w *bpWorld) login(b *testing.B) (login, settled time.Duration, heapPerSession float64) {
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	w.clients = make([]*testenv.LiteClient, w.n)
	b.Cleanup(func() {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 256)
		for _, c := range w.clients {
			if c != nil {
				sem <- struct{}{}
				wg.Go(func() { c.Close(); <-sem })
			}
		}
		wg.Wait()
		// The server now handles every disconnect (unavailable to each
		// contact still online): let it finish before it is stopped.
		w.waitServerIdle(2 * time.Minute)
	})
	w.obs.arm(phaseAvail, w.obs.total())
	began := time.Now()
	next := make(chan int)
	errs := make(chan error, bpLoginConcurrency)
	var wg sync.WaitGroup
	for range bpLoginConcurrency {
		wg.Go(func() {
			for i := range next {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := w.dial(ctx, i)
				cancel()
				if err != nil {
					errs <- err
					for range next {
					}
					return
				}
			}
		})
	}
	for i := range w.n {
		select {
		case next <- i:
			continue
		case err := <-errs:
			close(next)
			wg.Wait()
			b.Fatalf("logging in user %d of %d: %v\n%s", i, w.n, err, w.srv.Log())
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatalf("logging in: %v\n%s", err, w.srv.Log())
	default:
	}
	login = time.Since(began)
	last, ok := w.obs.wait(time.Now().Add(2 * time.Minute))
	if !ok {
		b.Fatalf("after login, only %d of %d contact presences arrived\n%s", w.obs.matched.Load(), w.obs.total(), w.srv.Log())
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	return login, last.Sub(began), float64(after.HeapInuse-before.HeapInuse) / float64(w.n)
}

func (w *bpWorld) dial(ctx context.Context, i int) error {
	user := bpUser(i)
	c, err := testenv.DialLite(ctx, w.srv, user, user, "bench", func(p testenv.LitePresence) { w.obs.on(i, p) })
	if err != nil {
		return err
	}
	w.clients[i] = c
	if err := c.Send(ctx, `<iq type="get" id="roster1"><query xmlns="jabber:iq:roster"/></iq>`); err != nil {
		return err
	}
	return c.Send(ctx, `<presence><status>here</status></presence>`)
}

// startBot runs the component at rate until the returned stop; it waits
// until it is connected and has learnt everyone's presence. Each run's
// component has a store of its own, so what an earlier run left
// unfinished is not sent again. Its warnings go to the benchmark's log.
func (w *bpWorld) startBot(b *testing.B, rate float64, noScheduled bool) (*prometheus.Registry, func()) {
	cfg := xmppbot.Config{
		Server: w.srv.ComponentAddr, JID: w.srv.ComponentJID, Secret: []byte(w.srv.ComponentSecret),
		Hosts: []string{w.srv.Domain}, SendRate: rate, NoScheduled: noScheduled,
		Logger: slog.New(slog.NewTextHandler(bpLogWriter{b}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if w.srv.Kind == "ejabberd" {
		cfg.SessionsAPI = "http://" + w.srv.HTTPAddr + "/api"
	}
	db, err := store.Open(":memory:")
	if err != nil {
		b.Fatal(err)
	}
	bot, err := xmppbot.New(cfg, w.engine, bpDirectory{w.srv.Domain}, db)
	if err != nil {
		b.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := bot.RegisterMetrics(reg); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); bot.Run(ctx) }()
	stop := func() { cancel(); <-done; db.Close() }
	deadline := time.Now().Add(60 * time.Second)
	for !bot.Status().Connected || bpGauge(reg, "presencegw_xmpp_online_people") < float64(w.n) {
		if time.Now().After(deadline) {
			stop()
			b.Fatalf("component not connected with everyone online within 60 s: %+v, online %v\n%s",
				bot.Status(), bpGauge(reg, "presencegw_xmpp_online_people"), w.srv.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return reg, stop
}

// bpLogWriter writes the component's log lines to the benchmark's log.
type bpLogWriter struct{ b *testing.B }

func (l bpLogWriter) Write(p []byte) (int, error) {
	l.b.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// bpGauge sums a metric family's values (gauges and counters), with
// labels matching label=value pairs if given.
func bpGauge(reg *prometheus.Registry, name string, labels ...string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			match := true
			for i := 0; i+1 < len(labels); i += 2 {
				match = match && have[labels[i]] == labels[i+1]
			}
			if match {
				sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// waitServerIdle waits until the server has closed the clients'
// sockets (fewer than 200 open files) and used no CPU for a second.
func (w *bpWorld) waitServerIdle(limit time.Duration) {
	pid := w.srv.PID()
	deadline := time.Now().Add(limit)
	prev, err := testenv.ProcessCPU(pid)
	idleSince := time.Now()
	for err == nil && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		var cur time.Duration
		if cur, err = testenv.ProcessCPU(pid); cur != prev {
			prev, idleSince = cur, time.Now()
			continue
		}
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if len(fds) < 200 && time.Since(idleSince) >= time.Second {
			return
		}
	}
}

// bpCPU is the CPU time used so far by the server, this process and the
// whole machine (busy time over all cores).
type bpCPU struct{ server, self, machine time.Duration }

func (c bpCPU) sub(d bpCPU) bpCPU {
	return bpCPU{c.server - d.server, c.self - d.self, c.machine - d.machine}
}

// others is the machine's busy time outside the server and this process
// (other people's builds and tests share the machine).
func (c bpCPU) others() time.Duration { return max(c.machine-c.server-c.self, 0) }

// nextBoundary is a whole second at least lead from now.
func nextBoundary(lead time.Duration) time.Time {
	return time.Now().Add(lead).Truncate(time.Second).Add(time.Second)
}

// cpuNow reads the server's, this process's and the machine's CPU time.
func (w *bpWorld) cpuNow(b *testing.B) bpCPU {
	var c bpCPU
	var err error
	if c.server, err = testenv.ProcessCPU(w.srv.PID()); err != nil {
		b.Fatal(err)
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	c.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	// /proc/stat's first line: cpu user nice system idle iowait irq
	// softirq steal …, in 1/100 s.
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseInt(f, 10, 64)
		if i != 3 && i != 4 && i < 8 { // not idle, iowait; not guest (in user already)
			c.machine += time.Duration(v) * 10 * time.Millisecond
		}
	}
	return c
}

// boundary runs one shared meeting start with the component at
// spec.rate, then lets the server withdraw the overlays (the component
// leaves; the grace period is 1 s) so the next run starts clean.
func (w *bpWorld) boundary(b *testing.B, spec bpSpec) bpResult {
	reg, stop := w.startBot(b, spec.rate, spec.now)
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	who := map[string]bool{}
	stride := w.n / spec.changing
	for i := 0; len(who) < spec.changing; i += stride {
		who[bpUser(i)+"@example.com"] = true
	}
	expected := len(who) * 2 * bpRing
	lead := 3 * time.Second
	if !spec.now {
		// Time to send every scheduled overlay at the rate, after the
		// publisher's next re-read (every 5 s) notices the meetings.
		lead = time.Duration(float64(len(who))/spec.rate*1.2*float64(time.Second)) + 10*time.Second
	}
	t0 := nextBoundary(lead)
	w.cal.set([]rules.Event{{Start: t0, End: t0.Add(time.Hour), ShowAs: rules.ShowBusy}}, who)
	w.refresh(b)
	if time.Until(t0) < 200*time.Millisecond {
		b.Fatalf("the calendar refresh ended %v before the boundary: too late to measure", time.Until(t0))
	}
	// When the component has all its requests answered (sets at T, or
	// scheduled ones ahead).
	sets := func() float64 {
		return bpGauge(reg, "presencegw_xmpp_overlay_requests_total", "request", "set") +
			bpGauge(reg, "presencegw_xmpp_overlay_requests_total", "request", "schedule")
	}
	sentc := make(chan time.Time, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for ctx.Err() == nil && sets() < float64(len(who)) {
			time.Sleep(20 * time.Millisecond)
		}
		sentc <- time.Now()
	}()
	time.Sleep(time.Until(t0) - 2*time.Second)
	w.obs.arm(phaseDND, expected)
	dropped0 := bpGauge(w.engReg, "presencegw_presence_changes_dropped_total")
	time.Sleep(time.Until(t0) - 20*time.Millisecond)
	cpu0 := w.cpuNow(b)
	scheduledAhead := bpGauge(reg, "presencegw_xmpp_overlay_requests_total", "request", "schedule")
	// Generous: the send time at rate, and a server handling only 100
	// overlays per second; a lost change ends the wait after bpStall.
	timeout := t0.Add(time.Duration(float64(len(who))/spec.rate*1.5*float64(time.Second)) + time.Duration(len(who))*10*time.Millisecond + time.Minute)
	last, complete := w.obs.wait(timeout)
	cpu := w.cpuNow(b).sub(cpu0)
	cancel()
	r := bpResult{name: spec.name(), changing: len(who), rate: spec.rate, ahead: scheduledAhead,
		lat: w.obs.latencies(t0), expected: expected, sent: (<-sentc).Sub(t0),
		dnd: w.obs.dnd.Load(), bad: w.obs.badStatus.Load(), last: last.Sub(t0),
		cpu:      cpu,
		requests: sets(),
		dropped:  bpGauge(w.engReg, "presencegw_presence_changes_dropped_total") - dropped0}
	if !complete {
		b.Errorf("%s: only %d of %d contact presences were overlaid within %v (overlay sets sent: %v, engine changes dropped: %v)",
			r.name, len(r.lat), r.expected, timeout.Sub(t0).Round(time.Second), r.requests, r.dropped)
	}
	stop()
	stopped = true
	w.cal.set(nil, nil)
	w.refresh(b)
	// The contacts that saw the overlay see it withdrawn.
	w.obs.arm(phaseAvail, len(r.lat))
	began := time.Now()
	if _, ok := w.obs.wait(began.Add(3 * time.Minute)); !ok {
		b.Fatalf("%s: overlays not withdrawn 3 min after the component left: %d of %d contact presences back\n%s",
			r.name, w.obs.matched.Load(), len(r.lat), w.srv.Log())
	}
	r.withdraw = time.Since(began)
	return r
}

// selfBroadcast is the reference without the overlay: at T every user
// sends the same dnd presence itself (the component connected, as in
// the runs above, and the module loaded but holding no overlay).
func (w *bpWorld) selfBroadcast(b *testing.B) bpResult {
	reg, stop := w.startBot(b, 0, true)
	defer stop()
	_ = reg
	t0 := nextBoundary(2 * time.Second)
	raw := `<presence><show>dnd</show><status>` + bpBusyPrefix + t0.Add(time.Hour).UTC().Format("15:04") + `</status></presence>`
	w.obs.arm(phaseDND, w.obs.total())
	time.Sleep(time.Until(t0) - 20*time.Millisecond)
	cpu0 := w.cpuNow(b)
	time.Sleep(time.Until(t0))
	next := make(chan int, w.n)
	for i := range w.n {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range bpLoginConcurrency {
		wg.Go(func() {
			for i := range next {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if w.clients[i].Send(ctx, raw) != nil {
					failed.Add(1)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	sent := time.Since(t0)
	last, complete := w.obs.wait(time.Now().Add(60 * time.Second))
	cpu := w.cpuNow(b).sub(cpu0)
	if failed.Load() > 0 || !complete {
		b.Errorf("self-broadcast: %d sends failed; %d of %d contact presences arrived", failed.Load(), w.obs.matched.Load(), w.obs.total())
	}
	b.Logf("self-broadcast: %d presences sent by the users in %v", w.n, sent.Round(time.Millisecond))
	return bpResult{name: "self-broadcast", changing: w.n, sent: sent, lat: w.obs.latencies(t0), expected: w.obs.total(),
		dnd: w.obs.dnd.Load(), bad: w.obs.badStatus.Load(), last: last.Sub(t0),
		cpu: cpu}
}

func (r bpResult) report(b *testing.B) {
	b.ReportMetric(pct(r.lat, 0.50).Seconds(), "p50-s")
	b.ReportMetric(pct(r.lat, 0.99).Seconds(), "p99-s")
	b.ReportMetric(pct(r.lat, 1).Seconds(), "max-s")
	b.ReportMetric(float64(len(r.lat)), "presences")
	b.ReportMetric(float64(r.expected-len(r.lat)), "missing")
	b.ReportMetric(r.cpuPercent(), "server-cpu-%")
	b.ReportMetric(r.cpuPerPresence(), "server-cpu-us/presence")
}

func (r bpResult) cpuPercent() float64 {
	if r.last <= 0 {
		return 0
	}
	return 100 * r.cpu.server.Seconds() / r.last.Seconds()
}

func (r bpResult) cpuPerPresence() float64 {
	if r.dnd == 0 {
		return 0
	}
	return float64(r.cpu.server.Microseconds()) / float64(r.dnd)
}

// summary logs the table for the note, and what the server logged at
// warn or error.
func (w *bpWorld) summary(b *testing.B, results []bpResult, login, settled time.Duration) {
	var t strings.Builder
	fmt.Fprintf(&t, "\n%s, %d users online, %d contacts each (%d contact-visible presences per boundary); login %v (%d at a time, %.0f/s), all presence seen after %v; %d cores, load average now %s\n",
		w.srv.Kind, w.n, 2*bpRing, w.obs.total(), login.Round(time.Millisecond), bpLoginConcurrency, float64(w.n)/login.Seconds(),
		settled.Round(time.Millisecond), runtime.NumCPU(), bpLoadAvg())
	fmt.Fprintf(&t, "%-27s %8s %8s %8s %6s %4s %6s %8s %8s %5s %7s %7s %7s %8s\n",
		"changing@rate/s", "p50", "p99", "max", "seen", "miss", "sets", "sent", "srv cpu", "srv%", "µs/pres", "gw cpu", "others", "withdraw")
	for _, r := range results {
		name := r.name
		switch {
		case r.rate == 200 && !strings.HasSuffix(name, ":now"):
			name += " (default)"
		case r.rate == 200:
			name += " (default, old)"
		case r.rate == 0:
			name = fmt.Sprintf("%d users' own dnd", r.changing)
		}
		fmt.Fprintf(&t, "%-27s %8s %8s %8s %6d %4d %6.0f %8s %8s %4.0f%% %7.0f %7s %7s %8s\n", name,
			bpDur(pct(r.lat, 0.5)), bpDur(pct(r.lat, 0.99)), bpDur(pct(r.lat, 1)), len(r.lat), r.expected-len(r.lat), r.requests,
			bpDur(r.sent), bpDur(r.cpu.server), r.cpuPercent(), r.cpuPerPresence(), bpDur(r.cpu.self), bpDur(r.cpu.others()), bpDur(r.withdraw))
		if r.dropped > 0 || r.bad > 0 {
			fmt.Fprintf(&t, "    %s: engine changes dropped %v, dnd without the calendar text %d\n", r.name, r.dropped, r.bad)
		}
		if r.ahead > 0 {
			fmt.Fprintf(&t, "    %s: %v scheduled overlays accepted before T\n", r.name, r.ahead)
		}
	}
	t.WriteString(`p50, p99, max: from T until a contact received the dnd presence, over the seen ones (4 per changing user);
sets: overlay requests the component sent (sets and scheduled sets); sent: T until the last was answered, negative
when all were answered before T (scheduled ahead); for the users' own dnd: until the last was written; C@R:now: no
scheduled overlays (every set at T, as before them); srv cpu: the server process's CPU time from T to the last presence
(srv%: of that wall time); µs/pres: server CPU per contact-visible dnd presence delivered; gw cpu: this process
(component, engine and all the clients); others: CPU other processes on the machine used meanwhile; withdraw:
after the component left, until every contact saw the person's own presence again (module grace period 1 s).
`)
	t.WriteString(w.serverComplaints())
	b.Log(t.String())
}

// bpLoadAvg is /proc/loadavg's 1, 5 and 15 minute averages.
func bpLoadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	return strings.Join(f[:min(3, len(f))], " ")
}

func bpDur(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.Round(time.Millisecond).String()
}

// serverComplaints counts the server log's warnings and errors (fd
// exhaustion shows there), with a few examples.
func (w *bpWorld) serverComplaints() string {
	path, marks := w.srv.Dir+"/prosody.log", []string{"\twarn\t", "\terror\t"}
	if w.srv.Kind == "ejabberd" {
		path, marks = w.srv.Dir+"/logs/ejabberd.log", []string{"[warning]", "[error]", "[critical]"}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "server log: " + err.Error() + "\n"
	}
	var n int
	var examples []string
	for _, line := range strings.Split(string(data), "\n") {
		bad := strings.Contains(strings.ToLower(line), "too many open files") || strings.Contains(line, "emfile")
		for _, m := range marks {
			bad = bad || strings.Contains(line, m)
		}
		if bad {
			n++
			if len(examples) < 5 {
				examples = append(examples, "    "+line)
			}
		}
	}
	return fmt.Sprintf("server log: %d warning/error lines\n%s", n, strings.Join(examples, "\n"))
}
