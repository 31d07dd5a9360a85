package graph

// EWS is the calendar source for on-premises Exchange (2016, 2019,
// Subscription Edition), which Microsoft Graph does not reach. Exchange
// Online blocks EWS from October 2026 unless a tenant is allow-listed and
// turns it off for good in April 2027, so online mailboxes always go
// through the Graph source; this one is for the mailboxes on premises.
//
// It speaks SOAP with encoding/xml (ews_soap.go; the Go EWS libraries are
// unmaintained) and makes two kinds of request:
//
//   - GetUserAvailability with the DetailedMerged view: the events (start,
//     end, busy type, and subject and location where the caller's free/busy
//     rights allow) of up to 100 mailboxes per request, the documented
//     maximum, over a window of at most 42 days.
//   - GetMailTips with OutOfOfficeMessage for the automatic replies of up to
//     50 recipients per request (MaxRecipientsPerGetMailTipsRequest).
//     GetUserOofSettings would give the setting exactly (state, schedule
//     even before it begins) but reads one mailbox per request and needs
//     rights on each mailbox (impersonation or full access: "User is not
//     mailbox owner" otherwise): 4 requests per mailbox and hour at a
//     15-minute interval against 0.08 with mail tips. Mail tips report a
//     reply only while it is on, with its window when scheduled, which is
//     all presence needs (see oofTip).
//
// At 10,000 mailboxes with the engine's defaults (schedules every 5
// minutes, automatic replies every 15) that is 100 × 12 + 200 × 4 = 2,000
// requests an hour, 0.2 per mailbox (BenchmarkEWSPollCost measures it).

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Azure/go-ntlmssp"

	"github.com/presencegw/presencegw/rules"
)

// EWSConfig configures the EWS source.
type EWSConfig struct {
	// URL is the EWS endpoint, https://mail.example.com/EWS/Exchange.asmx.
	URL string
	// Auth is "ntlm" (the default with a username: what an on-premises
	// EWS virtual directory offers), "basic" (over HTTPS; "no longer
	// recommended" by Microsoft) or "bearer" (OAuth, hybrid modern auth).
	Auth string
	// Username ("DOMAIN\user" or "user@example.com") and Password for
	// NTLM and Basic.
	Username, Password string
	// Token returns an OAuth access token for Auth "bearer"; it is called
	// for every request, so it should cache.
	Token func(ctx context.Context) (string, error)
	// Impersonate, when set, is the SMTP address sent in an
	// ExchangeImpersonation header (ApplicationImpersonation role) with
	// GetMailTips, so a service account without a mailbox of its own can
	// ask mail tips as that mailbox. GetUserAvailability does not need it:
	// the availability service answers the caller with the free/busy
	// rights the caller has, and impersonating would cost an extra
	// directory lookup per request and the impersonated account's budget,
	// so it is never sent there.
	Impersonate string
	// SendingAs is the sender GetMailTips evaluates the tips for (an
	// internal address, so the internal reply is returned). Default
	// Impersonate, else Username when it is an address.
	SendingAs string
	// ServerVersion is the RequestServerVersion, default Exchange2013_SP1.
	// Exchange 2010 or later is needed (GetMailTips, TimeZoneContext).
	ServerVersion string
	// CAFile is a PEM file of CA certificates trusted besides the system's
	// (an internal CA).
	CAFile string
	// Timeout of one HTTP attempt, answer included. Default 60s.
	Timeout time.Duration
	// Concurrency bounds requests in flight. Default 4 (Exchange's
	// EWSMaxConcurrency, 27 from 2013, is shared with everything else the
	// service account does).
	Concurrency int
	// MaxRetries for ErrorServerBusy, 5xx and broken connections before a
	// request fails. Default 3.
	MaxRetries int
	// RetryDelay is the first wait before retrying a 5xx or a broken
	// connection (doubled each time, with jitter). Default 1s.
	RetryDelay time.Duration
	// MaxBackOff is the longest ErrorServerBusy back-off waited for; a
	// longer one pauses all requests this long and fails the request.
	// Default 5m.
	MaxBackOff time.Duration
	// MaxResponseBytes bounds an answer. Default 32 MiB.
	MaxResponseBytes int64
	// AvailabilityBatch is the mailboxes per GetUserAvailability, at most
	// and by default 100.
	AvailabilityBatch int
	// MailTipsBatch is the recipients per GetMailTips. Default 50.
	MailTipsBatch int
}

// EWS reads calendars from Exchange Web Services; it implements the
// engine's CalendarSource.
type EWS struct {
	cfg EWSConfig
	url *url.URL
	log *slog.Logger
	// sem bounds requests in flight; idle holds the slots' HTTP clients,
	// one request at a time each, the most recently used on top (so a
	// light load keeps using one authenticated connection).
	sem    chan struct{}
	idleMu sync.Mutex
	idle   []*http.Client
	st     ewsCounters

	mu         sync.Mutex
	pauseUntil time.Time
	clamped    sync.Once
}

var ewsVersion = regexp.MustCompile(`^(Exchange20(1\d|[2-9]\d)(_SP\d)?|V20\d\d_\d\d_\d\d)$`)

// NewEWS builds the source. It does not contact Exchange.
func NewEWS(cfg EWSConfig, log *slog.Logger) (*EWS, error) {
	u, err := url.Parse(cfg.URL)
	switch {
	case err != nil || u.Host == "":
		return nil, fmt.Errorf("ews: url %q is not an absolute URL", cfg.URL)
	case u.Scheme != "https":
		return nil, fmt.Errorf("ews: url %q: HTTPS is required (credentials and calendars travel in it)", cfg.URL)
	}
	if cfg.Auth == "" {
		cfg.Auth = "ntlm"
		if cfg.Username == "" && cfg.Token != nil {
			cfg.Auth = "bearer"
		}
	}
	switch cfg.Auth {
	case "ntlm", "basic":
		if cfg.Username == "" || cfg.Password == "" {
			return nil, fmt.Errorf("ews: %s auth needs a username and a password", cfg.Auth)
		}
	case "bearer":
		if cfg.Token == nil {
			return nil, errors.New("ews: bearer auth needs a token source")
		}
	default:
		return nil, fmt.Errorf("ews: auth %q: use ntlm, basic or bearer", cfg.Auth)
	}
	if cfg.ServerVersion == "" {
		cfg.ServerVersion = "Exchange2013_SP1"
	}
	if !ewsVersion.MatchString(cfg.ServerVersion) {
		return nil, fmt.Errorf("ews: server version %q: use Exchange2010 or later (Exchange2010_SP2, Exchange2013_SP1 …); GetMailTips and TimeZoneContext need it", cfg.ServerVersion)
	}
	if cfg.SendingAs == "" {
		cfg.SendingAs = cfg.Impersonate
	}
	if cfg.SendingAs == "" && strings.Contains(cfg.Username, "@") && !strings.Contains(cfg.Username, `\`) {
		cfg.SendingAs = cfg.Username
	}
	if cfg.SendingAs == "" {
		return nil, errors.New("ews: sending_as is required: GetMailTips evaluates automatic replies for a sender, the service account's mail address")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Timeout, 60*time.Second)
	def(&cfg.RetryDelay, time.Second)
	def(&cfg.MaxBackOff, 5*time.Minute)
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.MaxRetries <= 0 {
		cfg.MaxRetries = 3
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = 32 << 20
	}
	if cfg.AvailabilityBatch <= 0 || cfg.AvailabilityBatch > EWSMaxMailboxes {
		cfg.AvailabilityBatch = EWSMaxMailboxes
	}
	if cfg.MailTipsBatch <= 0 {
		cfg.MailTipsBatch = EWSMailTipsBatch
	}
	s := &EWS{cfg: cfg, url: u, log: log, sem: make(chan struct{}, cfg.Concurrency)}
	for range cfg.Concurrency {
		c, err := s.httpClient()
		if err != nil {
			return nil, err
		}
		s.idle = append(s.idle, c)
	}
	return s, nil
}

// httpClient is the client of one request slot: TLS with the extra CA;
// for NTLM the Negotiator, under HTTP/1.1 (IIS does not do NTLM over
// HTTP/2). Each slot has its own connection pool and sends one request
// at a time, because NTLM authenticates a connection: with a shared pool,
// concurrent requests take each other's connections between the legs of
// a handshake, and the server refuses the last leg. On its own pool a
// slot authenticates once and keeps reusing that connection. Redirects
// are not followed: a POST with credentials goes to the configured URL
// only.
func (s *EWS) httpClient() (*http.Client, error) {
	base := http.DefaultTransport.(*http.Transport).Clone()
	// The Negotiator keeps the first 401 open while it runs the handshake
	// on a second connection: room for both.
	base.MaxIdleConnsPerHost = 2
	base.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if s.cfg.CAFile != "" {
		pem, err := os.ReadFile(s.cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ews: CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ews: CA file %s holds no PEM certificate", s.cfg.CAFile)
		}
		base.TLSClientConfig.RootCAs = pool
	}
	var rt http.RoundTripper = countingTransport{next: base, n: &s.st.exchanges}
	if s.cfg.Auth == "ntlm" {
		base.ForceAttemptHTTP2 = false
		base.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		rt = ntlmssp.Negotiator{RoundTripper: rt}
	}
	return &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, nil
}

// BatchSizes implements the engine's CalendarSource: mailboxes per
// GetUserAvailability and per GetMailTips.
func (s *EWS) BatchSizes() (schedules, autoReplies int) {
	return s.cfg.AvailabilityBatch, s.cfg.MailTipsBatch
}

// Schedules reads the events of mailboxes in [start, end) with
// GetUserAvailability, AvailabilityBatch mailboxes a request, in order. A
// window longer than 42 days is cut to 42 (and logged once). A mailbox
// Exchange reports an error for (ErrorMailRecipientNotFound,
// ErrorNoFreeBusyAccess …) comes back with Err set; an error of a whole
// request (after retries) is returned as the error.
func (s *EWS) Schedules(ctx context.Context, mailboxes []string, start, end time.Time) ([]rules.MailboxFacts, error) {
	if len(mailboxes) == 0 {
		return nil, nil
	}
	start, end = start.Truncate(time.Second), end.Truncate(time.Second)
	if !end.After(start) {
		return nil, fmt.Errorf("ews: schedule window %s – %s is empty", start, end)
	}
	if end.Sub(start) > EWSMaxWindow {
		s.clamped.Do(func() {
			s.log.Warn("ews: schedule window longer than GetUserAvailability's 42 days; reading the first 42", "asked", end.Sub(start))
		})
		end = start.Add(EWSMaxWindow)
	}
	// Slots of the merged view, used when Exchange sends no events:
	// 5 minutes for a day, coarser for long windows (fewer digits).
	interval := 5 * time.Minute
	if end.Sub(start) > 24*time.Hour {
		interval = 30 * time.Minute
	}
	out := make([]rules.MailboxFacts, 0, len(mailboxes))
	for batch := range slices.Chunk(mailboxes, s.cfg.AvailabilityBatch) {
		env := envelope(s.cfg.ServerVersion, "", true, availabilityBody(batch, start, end, interval))
		var facts []rules.MailboxFacts
		err := s.call(ctx, "GetUserAvailability", env, "", func(raw []byte) (err error) {
			facts, err = parseAvailability(raw, batch, start, interval)
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, facts...)
	}
	return out, nil
}

// AutoReplies reads the automatic replies of mailboxes with GetMailTips,
// MailTipsBatch recipients a request.
func (s *EWS) AutoReplies(ctx context.Context, mailboxes []string) ([]rules.MailboxFacts, error) {
	out := make([]rules.MailboxFacts, 0, len(mailboxes))
	for batch := range slices.Chunk(mailboxes, s.cfg.MailTipsBatch) {
		env := envelope(s.cfg.ServerVersion, s.cfg.Impersonate, true, mailTipsBody(s.cfg.SendingAs, batch))
		var facts []rules.MailboxFacts
		err := s.call(ctx, "GetMailTips", env, s.cfg.Impersonate, func(raw []byte) (err error) {
			facts, err = parseMailTips(raw, batch)
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, facts...)
	}
	return out, nil
}
