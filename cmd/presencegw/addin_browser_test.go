package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/presencegw/presencegw/graph"
	"github.com/presencegw/presencegw/internal/config"
	"github.com/presencegw/presencegw/ldapmap"
	"github.com/presencegw/presencegw/rules"
	"github.com/presencegw/presencegw/web"
)

// chromiumPath is Debian's chromium (.ci/run installs it). Missing fails.
const chromiumPath = "/usr/bin/chromium"

// browserSource is the demo calendar plus a meeting of carol's that the
// test sets while the pane is open.
type browserSource struct {
	*graph.Demo
	mu    sync.Mutex
	carol *rules.Event
}

func (s *browserSource) Schedules(ctx context.Context, mailboxes []string, start, end time.Time) ([]rules.MailboxFacts, error) {
	out, err := s.Demo.Schedules(ctx, mailboxes, start, end)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range out {
		if strings.EqualFold(out[i].Mailbox, "carol@example.com") && s.carol != nil {
			out[i].Events = append(out[i].Events, *s.carol)
		}
	}
	return out, err
}

// apiGate makes the API unreachable on demand: while closed, every /api/
// request has its connection dropped, and the open streams are cut off
// mid-body, as when the gateway dies or the network breaks.
type apiGate struct {
	next     http.Handler
	closed   atomic.Bool
	refused  atomic.Int64
	mu       sync.Mutex
	inFlight map[*http.Request]context.CancelFunc
	auths    []string // the Authorization header of every API request
	resumes  []string // the Last-Event-ID header of every stream request
}

func (g *apiGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/api/") {
		g.next.ServeHTTP(w, r)
		return
	}
	if g.closed.Load() {
		g.refused.Add(1)
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close() // as a gateway that is down: no answer at all
				return
			}
		}
		http.Error(w, "down", http.StatusBadGateway)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	r = r.WithContext(ctx)
	g.mu.Lock()
	g.auths = append(g.auths, r.Header.Get("Authorization"))
	if r.URL.Path == "/api/v1/presence/stream" {
		g.resumes = append(g.resumes, r.Header.Get("Last-Event-ID"))
	}
	g.inFlight[r] = cancel
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.inFlight, r)
		g.mu.Unlock()
		cancel()
	}()
	g.next.ServeHTTP(w, r)
	if g.closed.Load() {
		// Cut off: the connection drops without the body's proper end.
		panic(http.ErrAbortHandler)
	}
}

// close makes the API unreachable and ends what is open.
func (g *apiGate) close() {
	g.closed.Store(true)
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, cancel := range g.inFlight {
		cancel()
	}
}

// browserGateway runs the demo gateway as the demo command does (demo
// directory, presence engine, web server with the add-in) on 127.0.0.1:0,
// with src as its calendar.
func browserGateway(t *testing.T, src *browserSource, change func(*web.Options)) (string, *apiGate, func(...string)) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := config.Defaults()
	a, err := openApp(cfg, true, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	opts, err := webOptions(ctx, cfg.Web, true, log)
	if err != nil {
		t.Fatal(err)
	}
	if change != nil {
		change(&opts)
	}
	reg := prometheus.NewRegistry()
	h, err := web.New(opts, a.backend(), a.ready, reg, reg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gate := &apiGate{next: h, inFlight: map[*http.Request]context.CancelFunc{}}
	srv := &http.Server{Handler: gate, ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); a.dir.Run(ctx, ldapmap.Schedule{Incremental: time.Hour, Full: time.Hour}) }()
	go func() { defer wg.Done(); a.presence.Run(ctx, src) }()
	go func() { defer wg.Done(); _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		cancel()
		_ = srv.Close()
		h.Close()
		wg.Wait()
		a.close()
	})
	// Every test starts once the engine has its first answers (the demo's
	// alice is in a meeting): a pane opened earlier would show people
	// unknown for lack of a directory or calendar, not for what it tests.
	deadline := time.Now().Add(30 * time.Second)
	for a.backend().Lookup("alice@example.com").Presence.State != rules.Busy {
		if time.Now().After(deadline) {
			t.Fatal("the demo gateway did not answer alice as busy within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	refresh := func(ids ...string) {
		if err := a.presence.Refresh(ctx, src, ids...); err != nil {
			t.Fatal(err)
		}
	}
	return "http://" + ln.Addr().String(), gate, refresh
}

// apiPresence is one answer of the batch API.
type apiPresence struct {
	Email  string `json:"email"`
	Name   string `json:"name"`
	JID    string `json:"jid"`
	State  string `json:"state"`
	Status string `json:"status"`
	Source string `json:"source"`
	Until  string `json:"until"`
}

func batch(t *testing.T, base string, emails ...string) map[string]apiPresence {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"emails": emails})
	resp, err := http.Post(base+"/api/v1/presence/batch", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Results []apiPresence }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	m := map[string]apiPresence{}
	for _, p := range out.Results {
		m[p.Email] = p
	}
	return m
}

// paneLabels are the pane's words for the states (view.ts stateLabels).
var paneLabels = map[string]string{
	"available": "Available", "away": "Away", "xa": "Away for a while", "dnd": "Do not disturb", "busy": "Busy",
	"oof": "Out of office", "offline": "Offline", "unknown": "No presence",
}

// wantStatus is the status line the pane shows for an answer, with the
// browser in en-GB and UTC: a meeting's end in local time, else the
// gateway's text.
func wantStatus(p apiPresence, now time.Time) string {
	if p.State == "busy" && p.Source == "calendar" && p.Until != "" {
		u, err := time.Parse(time.RFC3339Nano, p.Until)
		if err == nil {
			u, now = u.UTC(), now.UTC()
			if u.YearDay() == now.YearDay() && u.Year() == now.Year() {
				return "In a meeting until " + u.Format("15:04")
			}
			return "In a meeting until " + u.Format("Mon 2 Jan 15:04")
		}
	}
	if l := paneLabels[p.State]; strings.HasPrefix(strings.ToLower(p.Status), strings.ToLower(l)+" ") {
		return p.Status[len(l)+1:]
	}
	return p.Status
}

// paneRow is what the test reads of one rendered row.
type paneRow struct {
	Group     string `json:"group"`
	Email     string `json:"email"`
	State     string `json:"state"`
	Label     string `json:"label"`
	Aria      string `json:"aria"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	Chat      string `json:"chat"`
	Mail      string `json:"mail"`
	Copy      string `json:"copy"`
	Focusable bool   `json:"focusable"`
}

const readRows = `[...document.querySelectorAll("section.group li.person")].map(li => ({
	group: li.closest("section").dataset.group,
	email: li.dataset.email,
	state: li.dataset.state,
	label: li.querySelector(".state")?.textContent ?? "",
	aria: li.querySelector(".presence")?.getAttribute("aria-label") ?? "",
	name: li.querySelector(".name")?.textContent ?? "",
	status: li.querySelector(".status .text")?.textContent ?? "",
	chat: li.querySelector("a.chat")?.getAttribute("href") ?? "",
	mail: li.querySelector("a.mail")?.getAttribute("href") ?? "",
	copy: li.querySelector("button.copy")?.getAttribute("aria-label") ?? "",
	focusable: [...li.querySelectorAll(".act")].every(a => a.tabIndex >= 0 && a.getAttribute("aria-label")),
}))`

// fakeOffice is the stand-in for Office.js: a mailbox with the item the
// test gives, ItemChanged and RecipientsChanged handlers it can fire, and
// the Office theme.
func fakeOffice(item any, theme map[string]any) []byte {
	it, _ := json.Marshal(item)
	th, _ := json.Marshal(theme)
	return []byte(`(function () {
  var handlers = {};
  function fire(type) { (handlers[type] || []).forEach(function (h) { h({ type: type }); }); }
  function wrapCompose(it) {
    if (!it || !it.compose) return it;
    var fields = {};
    ["to", "cc", "bcc"].forEach(function (f) {
      var list = it[f] || [];
      fields[f] = { getAsync: function (cb) { setTimeout(function () { cb({ status: "succeeded", value: list.slice() }); }, 0); },
                    _list: list };
    });
    return { itemType: "message", to: fields.to, cc: fields.cc, bcc: fields.bcc,
             addHandlerAsync: function (type, h, cb) { (handlers[type] = handlers[type] || []).push(h); if (cb) cb({ status: "succeeded" }); } };
  }
  var mailbox = {
    item: wrapCompose(` + string(it) + `),
    addHandlerAsync: function (type, h, cb) { (handlers[type] = handlers[type] || []).push(h); if (cb) cb({ status: "succeeded" }); }
  };
  window.__fakeOffice = {
    setItem: function (it) { mailbox.item = wrapCompose(it); fire("olkItemSelectedChanged"); },
    addRecipient: function (field, r) { mailbox.item[field]._list.push(r); fire("olkRecipientsChanged"); }
  };
  // When every row first shows presence, from the navigation's start
  // (performance.now), for the pane load time.
  new MutationObserver(function (_, obs) {
    var rows = document.querySelectorAll("li.person");
    if (rows.length && !document.querySelector('li.person[data-state="pending"]')) {
      window.__paneReady = performance.now();
      obs.disconnect();
    }
  }).observe(document, { childList: true, subtree: true, attributes: true });
  window.Office = {
    EventType: { ItemChanged: "olkItemSelectedChanged", RecipientsChanged: "olkRecipientsChanged", OfficeThemeChanged: "officeThemeChanged" },
    onReady: function (cb) { var info = { host: "Outlook", platform: "OfficeOnline" }; if (cb) cb(info); return Promise.resolve(info); },
    context: {
      mailbox: mailbox,
      officeTheme: ` + string(th) + `,
      requirements: { isSetSupported: function (name, v) { return name === "Mailbox" && parseFloat(v || "1.1") <= 1.7; } }
    }
  };
})();
`)
}

type addr struct {
	EmailAddress string `json:"emailAddress"`
	DisplayName  string `json:"displayName"`
}

// interception answers the browser's requests to URLs that match pattern
// (DevTools' wildcards) with a body of type ctype, instead of the network.
type interception struct {
	pattern string
	match   func(url string) bool
	ctype   string
	body    func() []byte
}

// browser starts headless Chromium with officeJS answering Office.js's
// CDN URL (and extra answering theirs), in en-GB and UTC.
func browser(t *testing.T, officeJS func() []byte, extra ...interception) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("headless Chromium is needed for the add-in tests (Debian package chromium): %v", err)
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-extensions", true),
		chromedp.Flag("force-color-profile", "srgb"), chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()))
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(360, 560)); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	if _, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "UTC"}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, emulation.SetLocaleOverride, emulation.SetLocaleOverrideParams{Locale: "en_GB"}); err != nil {
		t.Fatal(err)
	}
	answers := append([]interception{{pattern: web.OfficeJSURL, match: func(u string) bool { return u == web.OfficeJSURL },
		ctype: "text/javascript", body: officeJS}}, extra...)
	patterns := make([]*fetch.RequestPattern, len(answers))
	for i, a := range answers {
		patterns[i] = &fetch.RequestPattern{URLPattern: a.pattern}
	}
	paused := chromedp.Events(ctx, fetch.RequestPaused)
	go func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			a := answers[0]
			for _, x := range answers {
				if x.match(ev.Request.URL) {
					a = x
				}
			}
			_, _ = chromedp.Call(ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{RequestID: ev.RequestID, ResponseCode: 200,
				ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: a.ctype}, {Name: "Cache-Control", Value: "no-store"}},
				Body:            a.body()})
		}
	}()
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: patterns}); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// eval runs expr in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// paneWait polls the page until expr is true.
func paneWait(t *testing.T, ctx context.Context, what, expr string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			rows := eval[[]paneRow](t, ctx, readRows)
			notice := eval[string](t, ctx, `document.getElementById("notice").textContent`)
			t.Fatalf("after %v still not %s (err %v); notice %q, rows %+v", timeout, what, err, notice, rows)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// artifacts is where screenshots go: $PRESENCEGW_ARTIFACTS, else a
// temporary directory of the test.
func artifacts(t *testing.T) string {
	dir := os.Getenv("PRESENCEGW_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", p, len(png))
}

// checkRows compares every rendered row with the API's answer.
func checkRows(t *testing.T, base string, rows []paneRow, wantGroups map[string][]string) {
	t.Helper()
	var emails []string
	got := map[string][]string{}
	for _, r := range rows {
		got[r.Group] = append(got[r.Group], r.Email)
		emails = append(emails, r.Email)
	}
	if fmt.Sprint(got) != fmt.Sprint(wantGroups) {
		t.Errorf("groups %v, want %v", got, wantGroups)
	}
	api := batch(t, base, emails...)
	now := time.Now()
	for _, r := range rows {
		p := api[r.Email]
		if r.State != p.State {
			t.Errorf("%s: state %q on screen, API %q", r.Email, r.State, p.State)
		}
		if r.Label != paneLabels[p.State] || r.Aria != paneLabels[p.State] {
			t.Errorf("%s: label %q, aria-label %q, want %q", r.Email, r.Label, r.Aria, paneLabels[p.State])
		}
		if want := wantStatus(p, now); r.Status != want {
			t.Errorf("%s: status %q, want %q", r.Email, r.Status, want)
		}
		if p.Name != "" && r.Name != p.Name {
			t.Errorf("%s: name %q, want %q", r.Email, r.Name, p.Name)
		}
		wantChat := ""
		if p.JID != "" && p.State != "unknown" {
			wantChat = "xmpp:" + p.JID
		}
		if r.Chat != wantChat {
			t.Errorf("%s: chat %q, want %q", r.Email, r.Chat, wantChat)
		}
		if !strings.EqualFold(r.Mail, "mailto:"+r.Email) || !strings.HasPrefix(r.Copy, "Copy ") || !r.Focusable {
			t.Errorf("%s: actions mail %q copy %q focusable %v", r.Email, r.Mail, r.Copy, r.Focusable)
		}
	}
}

// TestAddinInBrowser drives the real task pane, served by a running demo
// gateway, in headless Chromium with a stand-in Office.js.
func TestAddinInBrowser(t *testing.T) {
	src := &browserSource{Demo: graph.NewDemo(time.Now(), time.UTC)}
	base, gate, refresh := browserGateway(t, src, nil)
	dir := artifacts(t)

	mailA := map[string]any{
		"itemType": "message",
		"from":     addr{"alice@example.com", "Alice Smith"},
		"sender":   addr{"frank@example.com", "Frank Miller"},
		"to":       []addr{{"carol@example.com", "Carol White"}, {"Dave@Example.com", "Dave Brown"}, {"nobody@example.com", "No Body"}},
		// The last is no address the gateway takes (a quoted local part
		// with an @): the pane leaves it out rather than have the gateway
		// refuse the stream of everyone.
		"cc": []addr{{"erin@example.com", "Erin Green"}, {"bob@example.com", "Bob Jones"}, {`"odd@one"@example.com`, "Odd One"}},
	}
	var mu sync.Mutex
	officeItem, theme := any(mailA), map[string]any{"bodyBackgroundColor": "#ffffff", "bodyForegroundColor": "#242424"}
	ctx := browser(t, func() []byte {
		mu.Lock()
		defer mu.Unlock()
		return fakeOffice(officeItem, theme)
	})

	// 1. The pane shows everyone of mail A as the API answers.
	start := time.Now()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/addin/taskpane.html")); err != nil {
		t.Fatal(err)
	}
	paneWait(t, ctx, "rendered", `document.body.dataset.state === "ready" && document.querySelectorAll("li.person").length === 7 &&
		!document.querySelector('li.person[data-state="pending"]')`, 30*time.Second)
	t.Logf("pane load time: every row with presence %.0f ms after navigation start (in the page); %v seen from the test",
		eval[float64](t, ctx, `window.__paneReady`), time.Since(start).Round(time.Millisecond))
	eval[bool](t, ctx, `window.__noReload = true`)
	rows := eval[[]paneRow](t, ctx, readRows)
	checkRows(t, base, rows, map[string][]string{
		"from": {"alice@example.com"}, "sender": {"frank@example.com"},
		"to": {"carol@example.com", "dave@example.com", "nobody@example.com"}, "cc": {"erin@example.com", "bob@example.com"},
	})
	if h := eval[string](t, ctx, `document.querySelector('section[data-group="sender"] h2').textContent`); h != "Sent by, on behalf of Alice Smith" {
		t.Errorf("sender heading %q", h)
	}
	if th := eval[string](t, ctx, `document.documentElement.dataset.theme`); th != "light" {
		t.Errorf("theme %q, want light", th)
	}
	for _, r := range rows {
		if r.Email == "nobody@example.com" && (r.State != "unknown" || r.Label != "No presence" || r.Chat != "") {
			t.Errorf("unknown address: %+v", r)
		}
		if r.Email == "carol@example.com" && r.State != "available" {
			t.Fatalf("carol is %q before her meeting, want available", r.State)
		}
	}
	screenshot(t, ctx, dir, "addin-1-read.png")

	// Keyboard: Tab walks through every row's actions in order, each
	// focusable control named for a screen reader.
	var focused []string
	for i := 0; i < 5; i++ {
		if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Tab)); err != nil {
			t.Fatal(err)
		}
		focused = append(focused, eval[string](t, ctx, `document.activeElement?.getAttribute("aria-label") ?? ""`))
	}
	if want := []string{"Chat with Alice Smith", "Mail Alice Smith", "Copy Alice Smith's address", "Chat with Frank Miller", "Mail Frank Miller"}; !slices.Equal(focused, want) {
		t.Errorf("Tab order %q, want %q", focused, want)
	}
	// Enter on a focused copy button copies the address and says so.
	eval[bool](t, ctx, `document.querySelector('li.person[data-email="alice@example.com"] button.copy').focus(), true`)
	if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Enter)); err != nil {
		t.Fatal(err)
	}
	paneWait(t, ctx, "copied", `document.getElementById("announce").textContent === "Copied Alice Smith's address, alice@example.com."`, 10*time.Second)

	// 2. Carol goes into a meeting: the row changes without a reload, at
	// the meeting's start (the engine's timer), not before.
	meeting := time.Now().Add(2 * time.Second).Truncate(time.Second)
	src.mu.Lock()
	src.carol = &rules.Event{Start: meeting, End: meeting.Add(30 * time.Minute), ShowAs: rules.ShowBusy, Subject: "Browser test"}
	src.mu.Unlock()
	refresh("carol@example.com")
	paneWait(t, ctx, "carol busy", `document.querySelector('li.person[data-email="carol@example.com"]')?.dataset.state === "busy"`, 30*time.Second)
	if late := time.Since(meeting); late < -100*time.Millisecond {
		t.Errorf("carol showed busy %v before her meeting started", -late)
	} else {
		t.Logf("carol's meeting on screen %v after it started", late.Round(time.Millisecond))
	}
	if !eval[bool](t, ctx, `window.__noReload === true`) {
		t.Error("the page reloaded")
	}
	rows = eval[[]paneRow](t, ctx, readRows)
	for _, r := range rows {
		if r.Email == "carol@example.com" {
			if want := "In a meeting until " + meeting.Add(30*time.Minute).UTC().Format("15:04"); r.Status != want || r.Label != "Busy" {
				t.Errorf("carol after the change: %q %q, want Busy, %q", r.Label, r.Status, want)
			}
		}
	}
	checkRows(t, base, rows, map[string][]string{
		"from": {"alice@example.com"}, "sender": {"frank@example.com"},
		"to": {"carol@example.com", "dave@example.com", "nobody@example.com"}, "cc": {"erin@example.com", "bob@example.com"},
	})
	screenshot(t, ctx, dir, "addin-2-live-meeting.png")

	// 3. The pinned pane follows ItemChanged to another mail.
	mailB := map[string]any{
		"itemType": "message",
		"from":     addr{"erin@example.com", "Erin Green"},
		"sender":   addr{"erin@example.com", "Erin Green"},
		"to":       []addr{{"A.Smith@Example.com", "Alice (alias)"}, {"zed@elsewhere.example", "Zed"}},
	}
	b, _ := json.Marshal(mailB)
	eval[bool](t, ctx, `__fakeOffice.setItem(`+string(b)+`), true`)
	paneWait(t, ctx, "mail B", `document.querySelectorAll("li.person").length === 3 && !document.querySelector('li.person[data-state="pending"]') &&
		!!document.querySelector('li.person[data-email="zed@elsewhere.example"]')`, 30*time.Second)
	rows = eval[[]paneRow](t, ctx, readRows)
	checkRows(t, base, rows, map[string][]string{"from": {"erin@example.com"}, "to": {"a.smith@example.com", "zed@elsewhere.example"}})
	screenshot(t, ctx, dir, "addin-3-item-changed.png")

	// 4. No item selected (the pinned pane between mails).
	eval[bool](t, ctx, `__fakeOffice.setItem(null), true`)
	paneWait(t, ctx, "empty", `document.body.dataset.state === "no-item" && document.querySelectorAll("li.person").length === 0 &&
		!document.getElementById("empty").hidden && document.getElementById("empty").textContent.includes("Select a message")`, 10*time.Second)

	// 5. The gateway goes away: a clear message, retries, and recovery.
	eval[bool](t, ctx, `__fakeOffice.setItem(`+string(b)+`), true`)
	// Every row answered: the stream has event ids to resume from.
	paneWait(t, ctx, "mail B again", `document.body.dataset.stream === "live" && document.querySelectorAll("li.person").length === 3 &&
		!document.querySelector('li.person[data-state="pending"]')`, 30*time.Second)
	gate.close()
	paneWait(t, ctx, "unreachable message", `!document.getElementById("notice").hidden &&
		document.getElementById("notice").textContent.includes("Presence is unavailable: cannot reach the presence gateway") &&
		document.getElementById("notice").textContent.includes("Retrying in")`, 30*time.Second)
	if role := eval[string](t, ctx, `document.getElementById("notice").getAttribute("role")`); role != "status" {
		t.Errorf("notice role %q, want status (announced)", role)
	}
	screenshot(t, ctx, dir, "addin-4-unreachable.png")
	down := time.Now()
	for gate.refused.Load() < 2 {
		if time.Since(down) > time.Minute {
			t.Fatal("the pane did not retry")
		}
		time.Sleep(100 * time.Millisecond)
	}
	gate.closed.Store(false)
	paneWait(t, ctx, "recovered", `document.body.dataset.stream === "live" && document.getElementById("notice").hidden`, 45*time.Second)
	t.Logf("the pane retried %d times while the API was down", gate.refused.Load())
	// It resumed where the broken stream was, not from scratch.
	gate.mu.Lock()
	resumes := append([]string(nil), gate.resumes...)
	gate.mu.Unlock()
	if len(resumes) < 2 || resumes[len(resumes)-1] == "" {
		t.Errorf("after the stream broke the pane reconnected without Last-Event-ID (stream requests' ids %q)", resumes)
	}

	// 6. Compose: recipients as they are typed (RecipientsChanged).
	mu.Lock()
	officeItem = map[string]any{"compose": true, "to": []addr{{"bob@example.com", "Bob Jones"}}}
	theme = map[string]any{"bodyBackgroundColor": "#1f1f1f", "bodyForegroundColor": "#f0f0f0", "isDarkTheme": true}
	mu.Unlock()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/addin/taskpane.html")); err != nil {
		t.Fatal(err)
	}
	paneWait(t, ctx, "compose", `document.querySelectorAll("li.person").length === 1 && !document.querySelector('li.person[data-state="pending"]')`, 30*time.Second)
	eval[bool](t, ctx, `__fakeOffice.addRecipient("cc", {emailAddress: "dave@example.com", displayName: "Dave Brown"}), true`)
	paneWait(t, ctx, "recipient added", `document.querySelectorAll("li.person").length === 2 && !document.querySelector('li.person[data-state="pending"]')`, 30*time.Second)
	rows = eval[[]paneRow](t, ctx, readRows)
	checkRows(t, base, rows, map[string][]string{"to": {"bob@example.com"}, "cc": {"dave@example.com"}})
	if th := eval[string](t, ctx, `document.documentElement.dataset.theme`); th != "dark" {
		t.Errorf("theme %q, want dark", th)
	}
	screenshot(t, ctx, dir, "addin-5-compose-dark.png")
}

// TestAddinSignInUnsupported loads the pane configured for Entra ID
// sign-in in a host without Nested App Authentication: with anonymous
// presence allowed it says so and shows presence; without, it says why
// nothing shows.
func TestAddinSignInUnsupported(t *testing.T) {
	src := &browserSource{Demo: graph.NewDemo(time.Now(), time.UTC)}
	anonymous := true
	signIn := func(o *web.Options) {
		o.Addin = &web.AddinOptions{ClientID: "0f4a5b6c-1d2e-4f30-8a9b-c0d1e2f3a4b5",
			Authority: "https://login.microsoftonline.com/organizations", Scope: "api://6e74172b-be56-4843-9ff4-e66a39bb12e3/access_as_user"}
		if !anonymous {
			o.Anonymous = []string{"badge"}
		}
	}
	base, _, _ := browserGateway(t, src, signIn)
	anonymous = false
	closedBase, _, _ := browserGateway(t, src, signIn)
	item := map[string]any{"itemType": "message", "from": addr{"carol@example.com", "Carol White"}}
	ctx := browser(t, func() []byte { return fakeOffice(item, nil) })
	const unsupported = "This version of Outlook cannot sign add-ins in (Nested App Authentication is not supported)."

	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/addin/taskpane.html")); err != nil {
		t.Fatal(err)
	}
	paneWait(t, ctx, "anonymous presence", `document.querySelector('li.person[data-email="carol@example.com"]')?.dataset.state === "available"`, 30*time.Second)
	if n := eval[string](t, ctx, `document.getElementById("notice").textContent`); !strings.Contains(n, unsupported) || !strings.Contains(n, "Showing presence without signing in.") {
		t.Errorf("notice %q", n)
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(closedBase+"/addin/taskpane.html")); err != nil {
		t.Fatal(err)
	}
	paneWait(t, ctx, "sign-in error", `document.getElementById("notice").dataset.kind === "error" &&
		document.getElementById("notice").textContent.includes("Nested App Authentication is not supported")`, 30*time.Second)
	if n := eval[string](t, ctx, `document.getElementById("notice").textContent`); strings.Contains(n, "Retrying") {
		t.Errorf("the pane retries what cannot work: %q", n)
	}
	paneWait(t, ctx, "rows say so", `document.querySelector("li.person .state").textContent === "Presence not available"`, 10*time.Second)
	if st := eval[string](t, ctx, `document.querySelector("li.person").dataset.state`); st != "pending" {
		t.Errorf("without sign-in carol is %q, want pending (nothing asked)", st)
	}
	screenshot(t, ctx, artifacts(t), "addin-6-no-naa.png")
}
