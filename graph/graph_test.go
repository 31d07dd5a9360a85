package graph_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/presencegw/presencegw/graph"
	"github.com/presencegw/presencegw/graph/graphtest"
	"github.com/presencegw/presencegw/rules"
)

func newSource(t *testing.T, fake *graphtest.Server, change func(*graph.Config)) *graph.Source {
	t.Helper()
	cfg := graph.Config{
		TenantID: fake.TenantID, ClientID: fake.ClientID, ClientSecret: fake.ClientSecret,
		BaseURL: fake.BaseURL(), AuthorityHost: fake.AuthorityHost(), Transport: fake.Client().Transport,
	}
	if change != nil {
		change(&cfg)
	}
	src, err := graph.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

var t0 = time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)

func TestSchedules(t *testing.T) {
	fake := graphtest.New(t)
	fake.SetMailbox("alice@example.com", graphtest.Mailbox{TimeZone: "W. Europe Standard Time", Items: []graphtest.Item{
		{Start: t0, End: t0.Add(30 * time.Minute), Status: "busy", Subject: "Standup", Location: "Room 1"},
		{Start: t0.Add(30 * time.Minute), End: t0.Add(time.Hour), Status: "tentative"},
		{Start: t0.Add(48 * time.Hour), End: t0.Add(49 * time.Hour), Status: "busy"}, // outside the window
	}})
	fake.SetMailbox("carol@example.com", graphtest.Mailbox{TimeZone: "Pacific Standard Time", Items: []graphtest.Item{
		{Start: t0, End: t0.Add(time.Hour), Status: "busy", IsPrivate: true, Subject: "Doctor"},
		// An older doc sample writes "Busy": the SDK cannot parse it, the
		// availability view still tells.
		{Start: t0.Add(2 * time.Hour), End: t0.Add(3 * time.Hour), Status: "Busy"},
	}})
	fake.SetMailbox("dave@example.com", graphtest.Mailbox{ErrorCode: "ErrorAccessDenied"})
	src := newSource(t, fake, nil)

	mailboxes := []string{"alice@example.com", "Carol@Example.com", "nobody@example.com", "dave@example.com"}
	got, err := src.Schedules(context.Background(), mailboxes, t0.Add(-time.Hour), t0.Add(8*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("got %d results, want one per mailbox", len(got))
	}
	alice, carol, nobody, dave := got[0], got[1], got[2], got[3]
	if alice.Err != nil || len(alice.Events) != 2 || alice.Location == nil || alice.Location.String() != "Europe/Berlin" {
		t.Fatalf("alice = %+v", alice)
	}
	if e := alice.Events[0]; !e.Start.Equal(t0) || !e.End.Equal(t0.Add(30*time.Minute)) || e.ShowAs != rules.ShowBusy || e.Subject != "Standup" || e.Location != "Room 1" {
		t.Errorf("alice's first event = %+v", e)
	}
	if alice.Events[1].ShowAs != rules.ShowTentative {
		t.Errorf("alice's second event = %+v", alice.Events[1])
	}
	if carol.Err != nil || carol.Mailbox != "Carol@Example.com" || len(carol.Events) != 2 || carol.Location.String() != "America/Los_Angeles" {
		t.Fatalf("carol = %+v", carol)
	}
	if e := carol.Events[0]; !e.Private || e.Subject != "" {
		t.Errorf("private event leaks: %+v", e)
	}
	if e := carol.Events[1]; e.ShowAs != rules.ShowBusy {
		t.Errorf(`"Busy" item = %+v, want busy from the availability view`, e)
	}
	for _, r := range []rules.MailboxFacts{nobody, dave} {
		if !errors.Is(r.Err, graph.ErrMailbox) {
			t.Errorf("%s: err = %v, want ErrMailbox", r.Mailbox, r.Err)
		}
	}
	if !strings.Contains(dave.Err.Error(), "ErrorAccessDenied") || !strings.Contains(nobody.Err.Error(), "ErrorMailRecipientNotFound") {
		t.Errorf("errors do not say why: %v / %v", dave.Err, nobody.Err)
	}
	// One request for all four, one token for many requests.
	if _, err := src.Schedules(context.Background(), mailboxes[:1], t0, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	reqs := fake.Requests()
	if len(reqs) != 2 || len(reqs[0].Mailboxes) != 4 || reqs[0].Path != "/v1.0/users/alice@example.com/calendar/getSchedule" {
		t.Errorf("requests = %+v", reqs)
	}
	if fake.Tokens() != 1 {
		t.Errorf("%d tokens fetched, want 1 (cached)", fake.Tokens())
	}
}

func TestScheduleLimits(t *testing.T) {
	fake := graphtest.New(t)
	src := newSource(t, fake, nil)
	many := make([]string, 21)
	for i := range many {
		many[i] = "x@example.com"
	}
	if _, err := src.Schedules(context.Background(), many, t0, t0.Add(time.Hour)); err == nil || !strings.Contains(err.Error(), "at most 20") {
		t.Errorf("21 mailboxes: %v", err)
	}
	if _, err := src.Schedules(context.Background(), many[:1], t0, t0.Add(62*24*time.Hour)); err == nil || !strings.Contains(err.Error(), "window") {
		t.Errorf("62 days: %v", err)
	}
	if len(fake.Requests()) != 0 {
		t.Errorf("invalid calls reached Graph: %+v", fake.Requests())
	}
}

func TestAutoReplies(t *testing.T) {
	fake := graphtest.New(t)
	fake.SetMailbox("bob@example.com", graphtest.Mailbox{AutoReply: &graphtest.AutoReply{
		Message: "<html><head><style>p{}</style></head><body><div>I&#39;m on holiday until Monday&nbsp;1 Dec.</div><div>Urgent: call Carol.</div></body></html>",
		Start:   t0.Add(-24 * time.Hour), End: t0.Add(6 * 24 * time.Hour)}})
	fake.SetMailbox("erin@example.com", graphtest.Mailbox{AutoReply: &graphtest.AutoReply{Message: "Gone fishing."}})
	fake.SetMailbox("carol@example.com", graphtest.Mailbox{})
	fake.SetMailbox("dave@example.com", graphtest.Mailbox{ErrorCode: "ErrorAccessDenied"})
	src := newSource(t, fake, nil)
	got, err := src.AutoReplies(context.Background(), []string{"bob@example.com", "erin@example.com", "carol@example.com", "dave@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	bob, erin, carol, dave := got[0].AutoReply, got[1].AutoReply, got[2].AutoReply, got[3]
	if bob.Status != rules.AutoReplyScheduled || !bob.Start.Equal(t0.Add(-24*time.Hour)) || !bob.End.Equal(t0.Add(6*24*time.Hour)) ||
		bob.Message != "I'm on holiday until Monday 1 Dec.\nUrgent: call Carol." {
		t.Errorf("bob = %+v", bob)
	}
	if erin.Status != rules.AutoReplyAlways || erin.Message != "Gone fishing." {
		t.Errorf("erin = %+v", erin)
	}
	if carol.Status != rules.AutoReplyDisabled || got[2].Err != nil {
		t.Errorf("carol = %+v", got[2])
	}
	if !errors.Is(dave.Err, graph.ErrMailbox) {
		t.Errorf("dave = %+v", dave)
	}
}

func TestThrottling(t *testing.T) {
	fake := graphtest.New(t)
	fake.SetMailbox("alice@example.com", graphtest.Mailbox{})
	src := newSource(t, fake, func(c *graph.Config) { c.MaxRetries = 2 })
	ctx := context.Background()

	// A 429 with Retry-After: 1 is waited out and retried.
	fake.Fail(1, 429, "1")
	start := time.Now()
	if _, err := src.Schedules(ctx, []string{"alice@example.com"}, t0, t0.Add(time.Hour)); err != nil {
		t.Fatalf("after one 429: %v", err)
	}
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Errorf("retried after %v, want Retry-After's 1s", waited)
	}
	// Retry-After pauses every request, not only the throttled one.
	fake.Fail(1, 429, "1")
	var wg sync.WaitGroup
	var second time.Duration
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, _ = src.AutoReplies(ctx, []string{"alice@example.com"})
	}()
	go func() {
		defer wg.Done()
		time.Sleep(200 * time.Millisecond) // after the 429 arrived
		s := time.Now()
		_, _ = src.AutoReplies(ctx, []string{"alice@example.com"})
		second = time.Since(s)
	}()
	wg.Wait()
	if second < 500*time.Millisecond {
		t.Errorf("a request during the pause went out after %v, want it held back", second)
	}
	// 503s without Retry-After: backoff, then give up with the status.
	fake.Fail(3, 503, "")
	_, err := src.Schedules(ctx, []string{"alice@example.com"}, t0, t0.Add(time.Hour))
	var se *graph.StatusError
	if !errors.As(err, &se) || se.Status != 503 {
		t.Errorf("after 3 × 503 with 2 retries: %v, want HTTP 503", err)
	}
	st := src.Stats()
	if st.Throttled != 5 || st.ByStatus[429] != 2 || st.ByStatus[503] != 3 || st.Failed != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestBadCredentials(t *testing.T) {
	fake := graphtest.New(t)
	src := newSource(t, fake, func(c *graph.Config) { c.ClientSecret = "wrong" })
	_, err := src.Schedules(context.Background(), []string{"a@example.com"}, t0, t0.Add(time.Hour))
	if err == nil || !strings.Contains(err.Error(), "AADSTS7000215") {
		t.Errorf("wrong secret: %v", err)
	}
	if _, err := graph.New(graph.Config{TenantID: "t", ClientID: "c"}, slog.Default()); err == nil {
		t.Error("no secret or certificate accepted")
	}
}

func TestHTMLToText(t *testing.T) {
	for in, want := range map[string]string{
		"Plain text &amp; more":     "Plain text & more",
		"<p>First</p><p>Second</p>": "First\nSecond",
		"<html><head><title>x</title></head><body>Hi<br>there</body></html>":        "Hi\nthere",
		"<div>  lots   of\t space&nbsp; </div><!-- comment --><script>x()</script>": "lots of space",
		"": "",
	} {
		if got := graph.HTMLToText(in); got != want {
			t.Errorf("HTMLToText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMetrics(t *testing.T) {
	fake := graphtest.New(t)
	fake.SetMailbox("alice@example.com", graphtest.Mailbox{})
	src := newSource(t, fake, nil)
	fake.Fail(1, 429, "0")
	if _, err := src.Schedules(context.Background(), []string{"alice@example.com"}, t0, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := src.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP presencegw_graph_requests_total HTTP requests to Microsoft Graph by status, retries included.
# TYPE presencegw_graph_requests_total counter
presencegw_graph_requests_total{status="200"} 1
presencegw_graph_requests_total{status="429"} 1
# HELP presencegw_graph_throttled_total Graph responses with 429, 503 or 504.
# TYPE presencegw_graph_throttled_total counter
presencegw_graph_throttled_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "presencegw_graph_requests_total", "presencegw_graph_throttled_total"); err != nil {
		t.Error(err)
	}
}

// Certificate credentials: a client assertion signed with the app's key.
func TestCertificateCredential(t *testing.T) {
	fake := graphtest.New(t)
	fake.SetMailbox("alice@example.com", graphtest.Mailbox{})
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "presencegw"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	fake.AppCertificate = cert
	pemData := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})...)
	src := newSource(t, fake, func(c *graph.Config) { c.ClientSecret, c.CertificatePEM = "", pemData })
	if _, err := src.Schedules(context.Background(), []string{"alice@example.com"}, t0, t0.Add(time.Hour)); err != nil {
		t.Fatalf("with a certificate: %v", err)
	}
	// An app certificate Entra ID does not know: refused by the server.
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	otherDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &other.PublicKey, other)
	if err != nil {
		t.Fatal(err)
	}
	pemOther := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: otherDER}),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(other)})...)
	bad := newSource(t, fake, func(c *graph.Config) { c.ClientSecret, c.CertificatePEM = "", pemOther })
	if _, err := bad.Schedules(context.Background(), []string{"alice@example.com"}, t0, t0.Add(time.Hour)); err == nil || !strings.Contains(err.Error(), "AADSTS700027") {
		t.Errorf("with an unknown certificate: %v", err)
	}
	// A key that does not belong to the certificate: refused at start-up.
	mismatched := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(other)})...)
	if _, err := graph.New(graph.Config{TenantID: "t", ClientID: "c", CertificatePEM: mismatched}, slog.Default()); err == nil {
		t.Error("a key not matching the certificate was accepted")
	}
}

// Automatic replies by $batch of mailboxSettings: per-item errors stay per
// mailbox, inner 429s are retried after their Retry-After.
func TestAutoRepliesByMailboxSettings(t *testing.T) {
	fake := graphtest.New(t)
	fake.SetMailbox("bob@example.com", graphtest.Mailbox{TimeZone: "W. Europe Standard Time", AutoReply: &graphtest.AutoReply{
		Message: "<div>Back on Monday.</div>", Start: t0.Add(-time.Hour), End: t0.Add(72 * time.Hour)}})
	fake.SetMailbox("erin@example.com", graphtest.Mailbox{AutoReply: &graphtest.AutoReply{Message: "Gone fishing."}})
	fake.SetMailbox("carol@example.com", graphtest.Mailbox{})
	fake.SetMailbox("dave@example.com", graphtest.Mailbox{ErrorCode: "ErrorAccessDenied"})
	src := newSource(t, fake, func(c *graph.Config) { c.AutoReplies = "mailbox_settings" })
	if _, n := src.BatchSizes(); n != 20 {
		t.Errorf("batch size %d, want 20", n)
	}
	fake.FailItems(2, 429, "1")
	start := time.Now()
	got, err := src.AutoReplies(context.Background(), []string{"bob@example.com", "erin@example.com", "carol@example.com", "dave@example.com", "nobody@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 900*time.Millisecond {
		t.Errorf("throttled items retried after %v, want Retry-After's 1s", time.Since(start))
	}
	bob, erin, carol := got[0], got[1], got[2]
	if bob.Err != nil || bob.AutoReply.Status != rules.AutoReplyScheduled || !bob.AutoReply.End.Equal(t0.Add(72*time.Hour)) ||
		bob.AutoReply.Message != "Back on Monday." || bob.Location == nil || bob.Location.String() != "Europe/Berlin" {
		t.Errorf("bob = %+v", bob)
	}
	if erin.Err != nil || erin.AutoReply.Status != rules.AutoReplyAlways || erin.AutoReply.Message != "Gone fishing." {
		t.Errorf("erin = %+v", erin)
	}
	if carol.Err != nil || carol.AutoReply.Status != rules.AutoReplyDisabled {
		t.Errorf("carol = %+v", carol)
	}
	for _, r := range got[3:] {
		if !errors.Is(r.Err, graph.ErrMailbox) {
			t.Errorf("%s: %v, want ErrMailbox", r.Mailbox, r.Err)
		}
	}
	if !strings.Contains(got[3].Err.Error(), "ErrorAccessDenied") {
		t.Errorf("dave's error does not say why: %v", got[3].Err)
	}
	reqs := fake.Requests()
	if len(reqs) != 2 || reqs[0].Path != "/v1.0/$batch" || len(reqs[0].Mailboxes) != 5 || len(reqs[1].Mailboxes) != 2 {
		t.Errorf("requests = %+v, want a batch of 5 and a retry of the 2 throttled", reqs)
	}
	if st := src.Stats(); st.Throttled != 2 {
		t.Errorf("throttled = %d, want the 2 inner 429s", st.Throttled)
	}
	if _, err := graph.New(graph.Config{TenantID: "t", ClientID: "c", ClientSecret: "s", AutoReplies: "carrier pigeon"}, slog.Default()); err == nil {
		t.Error("unknown auto-reply method accepted")
	}
}

// A leaver or a mailbox outside the app's access policy as the first of a
// batch must not hide the others: Graph refuses the whole request run as
// it, and the source asks again under the next mailbox.
func TestAnchorRefused(t *testing.T) {
	fake := graphtest.New(t)
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	fake.SetMailbox("bob@example.com", graphtest.Mailbox{TimeZone: "UTC", Items: []graphtest.Item{
		{Start: day, End: day.Add(24 * time.Hour), Status: "busy"},                    // all day
		{Start: day.Add(9 * time.Hour), End: day.Add(10 * time.Hour), Status: "busy"}, // not
	}})
	fake.SetMailbox("carol@example.com", graphtest.Mailbox{ErrorCode: "ErrorAccessDenied"})
	src := newSource(t, fake, nil)
	got, err := src.Schedules(context.Background(), []string{"aaron.left@example.com", "carol@example.com", "bob@example.com"}, day, day.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !errors.Is(got[0].Err, graph.ErrMailbox) || !errors.Is(got[1].Err, graph.ErrMailbox) || got[2].Err != nil {
		t.Fatalf("results = %+v", got)
	}
	if ev := got[2].Events; len(ev) != 2 || !ev[0].AllDay || ev[1].AllDay {
		t.Errorf("bob's events = %+v, want the first all-day", ev)
	}
	if n := len(fake.Requests()); n != 3 {
		t.Errorf("%d requests, want 3 (two refused anchors, then bob)", n)
	}
}

// A Retry-After longer than the per-attempt timeout is waited out.
func TestLongRetryAfter(t *testing.T) {
	fake := graphtest.New(t)
	fake.SetMailbox("alice@example.com", graphtest.Mailbox{})
	src := newSource(t, fake, func(c *graph.Config) { c.Timeout = 500 * time.Millisecond })
	fake.Fail(1, 429, "1")
	if _, err := src.Schedules(context.Background(), []string{"alice@example.com"}, t0, t0.Add(time.Hour)); err != nil {
		t.Errorf("Retry-After 1s with a 500ms attempt timeout: %v", err)
	}
}
