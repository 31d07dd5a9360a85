// Package graph holds the Exchange calendar sources: Microsoft Graph for
// Exchange Online and EWS for on-premises Exchange (iCalendar feeds are
// package ics; cmd/presencegw routes each mailbox to one of them). Only this package imports the
// Graph SDK (msgraph-sdk-go, which takes minutes to compile), so the rest
// of the gateway and its tests never link it; they see rules.MailboxFacts.
package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	abs "github.com/microsoft/kiota-abstractions-go"
	kauth "github.com/microsoft/kiota-authentication-azure-go"
	khttp "github.com/microsoft/kiota-http-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/presencegw/presencegw/rules"
)

// Limits Graph documents for the calls the source makes.
const (
	// MaxSchedules is getSchedule's maximum of mailboxes per request.
	MaxSchedules = 20
	// MaxWindow is getSchedule's limit on the time range (< 62 days).
	MaxWindow = 61 * 24 * time.Hour
)

// Config configures the Graph source.
type Config struct {
	TenantID string
	ClientID string
	// ClientSecret, or CertificatePEM (certificate and private key), for
	// the client-credentials grant.
	ClientSecret   string
	CertificatePEM []byte
	// BaseURL is the Graph endpoint, default https://graph.microsoft.com/v1.0
	// (national clouds: https://graph.microsoft.us/v1.0, …).
	BaseURL string
	// AuthorityHost is the Entra ID login host, default
	// https://login.microsoftonline.com/.
	AuthorityHost string
	// AutoReplies chooses how automatic replies are read: "mailtips"
	// (default: getMailTips, many mailboxes a request, needs Mail.Read) or
	// "mailbox_settings" ($batch of mailboxSettings, one request per
	// mailbox, needs only MailboxSettings.Read).
	AutoReplies string
	// MailTipsBatch is how many mailboxes one getMailTips request asks
	// for (automatic replies). Default 50.
	MailTipsBatch int
	// Concurrency bounds requests in flight. Default 4 (Outlook's limit
	// per app and mailbox).
	Concurrency int
	// MaxRetries for 429/503/504 before a request fails. Default 3.
	MaxRetries int
	// Timeout of one HTTP attempt. Default 30s.
	Timeout time.Duration
	// Transport is the HTTP transport (tests pass the fake's TLS client's).
	Transport http.RoundTripper
}

// Source reads calendars from Microsoft Graph with application
// permissions: Calendars.Read for getSchedule, Mail.Read for getMailTips'
// automatic replies (see README: the least Graph offers for reading
// automatic replies in bulk).
type Source struct {
	client   *msgraphsdk.GraphServiceClient
	adapter  *msgraphsdk.GraphRequestAdapter
	throttle *throttle
	cfg      Config
	log      *slog.Logger
}

// New builds a Source. It does not contact Graph; the first request gets
// the token.
func New(cfg Config, log *slog.Logger) (*Source, error) {
	if cfg.TenantID == "" || cfg.ClientID == "" {
		return nil, errors.New("graph: tenant_id and client_id are required")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://graph.microsoft.com/v1.0"
	}
	if cfg.AuthorityHost == "" {
		cfg.AuthorityHost = "https://login.microsoftonline.com/"
	}
	switch cfg.AutoReplies {
	case "":
		cfg.AutoReplies = "mailtips"
	case "mailtips", "mailbox_settings":
	default:
		return nil, fmt.Errorf("graph: auto replies by %q: use mailtips or mailbox_settings", cfg.AutoReplies)
	}
	if cfg.MailTipsBatch <= 0 {
		cfg.MailTipsBatch = 50
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.MaxRetries <= 0 {
		cfg.MaxRetries = 3
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	base, err := url.Parse(cfg.BaseURL)
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("graph: base URL %q: %v", cfg.BaseURL, err)
	}
	parent := cfg.Transport
	if parent == nil {
		parent = http.DefaultTransport
	}
	th := newThrottle(parent, cfg.Concurrency, cfg.MaxRetries, cfg.Timeout, log)
	opts := azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: cfg.AuthorityHost},
		Transport: &http.Client{Transport: parent, Timeout: cfg.Timeout},
		Retry:     policy.RetryOptions{MaxRetries: 2},
	}
	var cred azcore.TokenCredential
	switch {
	case len(cfg.CertificatePEM) > 0:
		certs, key, err := azidentity.ParseCertificates(cfg.CertificatePEM, nil)
		if err != nil {
			return nil, fmt.Errorf("graph: certificate: %w", err)
		}
		cred, err = azidentity.NewClientCertificateCredential(cfg.TenantID, cfg.ClientID, certs, key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: !isPublicCloud(cfg.AuthorityHost)})
		if err != nil {
			return nil, fmt.Errorf("graph: credential: %w", err)
		}
	case cfg.ClientSecret != "":
		cred, err = azidentity.NewClientSecretCredential(cfg.TenantID, cfg.ClientID, cfg.ClientSecret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: !isPublicCloud(cfg.AuthorityHost)})
		if err != nil {
			return nil, fmt.Errorf("graph: credential: %w", err)
		}
	default:
		return nil, errors.New("graph: a client secret or a certificate is required")
	}
	scope := base.Scheme + "://" + base.Host + "/.default"
	auth, err := kauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(cred, []string{scope}, []string{base.Hostname()})
	if err != nil {
		return nil, fmt.Errorf("graph: auth: %w", err)
	}
	// The SDK's middleware without its retry handler: retries, Retry-After
	// and concurrency are the throttle's, which sees every request and
	// can pause all of them when Graph says so.
	var mws []khttp.Middleware
	for _, m := range msgraphcore.GetDefaultMiddlewaresWithOptions(&msgraphcore.GraphClientOptions{}) {
		if _, retry := m.(*khttp.RetryHandler); !retry {
			mws = append(mws, m)
		}
	}
	// No client-wide timeout: the throttle times each attempt, and the
	// caller's context bounds the whole call, Retry-After waits included.
	httpClient := &http.Client{
		Transport:     khttp.NewCustomTransportWithParentTransport(th, mws...),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	adapter, err := msgraphsdk.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(auth, nil, nil, httpClient)
	if err != nil {
		return nil, fmt.Errorf("graph: adapter: %w", err)
	}
	adapter.SetBaseUrl(strings.TrimRight(cfg.BaseURL, "/"))
	return &Source{client: msgraphsdk.NewGraphServiceClient(adapter), adapter: adapter, throttle: th, cfg: cfg, log: log}, nil
}

func isPublicCloud(host string) bool {
	u, err := url.Parse(host)
	return err == nil && strings.HasSuffix(u.Hostname(), "microsoftonline.com")
}

// BatchSizes are how many mailboxes one call of Schedules and AutoReplies
// takes.
func (s *Source) BatchSizes() (schedules, autoReplies int) {
	if s.cfg.AutoReplies == "mailbox_settings" {
		return MaxSchedules, MaxBatch
	}
	return MaxSchedules, s.cfg.MailTipsBatch
}

// Stats returns the request counters of the source.
func (s *Source) Stats() Stats { return s.throttle.stats() }

// ErrMailbox marks a per-mailbox failure (not found, access denied by an
// application access policy, no calendar): retry that mailbox slowly, the
// others are fine.
var ErrMailbox = errors.New("mailbox not available")

// Schedules reads the events of up to MaxSchedules mailboxes in
// [start, end) with one getSchedule request. A mailbox Graph reports an
// error for comes back with Err set; an error of the whole request (after
// retries) is returned as the error.
func (s *Source) Schedules(ctx context.Context, mailboxes []string, start, end time.Time) ([]rules.MailboxFacts, error) {
	if len(mailboxes) == 0 {
		return nil, nil
	}
	if len(mailboxes) > MaxSchedules {
		return nil, fmt.Errorf("graph: getSchedule takes at most %d mailboxes, not %d", MaxSchedules, len(mailboxes))
	}
	if end.Sub(start) > MaxWindow {
		return nil, fmt.Errorf("graph: getSchedule window %s is longer than %s", end.Sub(start), MaxWindow)
	}
	return anchored(mailboxes, func(batch []string) ([]rules.MailboxFacts, error) {
		return s.schedules(ctx, batch, start, end)
	})
}

// anchored runs call with the batch's first mailbox as the user the
// request runs as. Graph refuses the whole request when that mailbox is
// unknown or outside an application access policy (404, 403): then it
// alone gets the error and the others are asked again under the next one,
// so one leaver cannot hide 19 colleagues.
func anchored(mailboxes []string, call func(batch []string) ([]rules.MailboxFacts, error)) ([]rules.MailboxFacts, error) {
	var out []rules.MailboxFacts
	for len(mailboxes) > 0 {
		facts, err := call(mailboxes)
		var se *StatusError
		if errors.As(err, &se) && (se.Status == http.StatusForbidden || se.Status == http.StatusNotFound) {
			out = append(out, rules.MailboxFacts{Mailbox: mailboxes[0], Err: fmt.Errorf("%w: %s: %v", ErrMailbox, mailboxes[0], err)})
			mailboxes = mailboxes[1:]
			continue
		}
		if err != nil {
			return nil, err
		}
		return append(out, facts...), nil
	}
	return out, nil
}

func (s *Source) schedules(ctx context.Context, mailboxes []string, start, end time.Time) ([]rules.MailboxFacts, error) {
	body := users.NewItemCalendarGetSchedulePostRequestBody()
	body.SetSchedules(mailboxes)
	body.SetStartTime(dateTimeTZ(start))
	body.SetEndTime(dateTimeTZ(end))
	// The availability view backs up items whose status the SDK cannot
	// parse (see events); 5-minute slots are precise enough for a day.
	interval := int32(5)
	if end.Sub(start) > 24*time.Hour {
		interval = 30
	}
	body.SetAvailabilityViewInterval(&interval)
	cfg := &users.ItemCalendarGetScheduleRequestBuilderPostRequestConfiguration{}
	// Times in UTC: no mapping of the answer's zone is needed.
	cfg.Headers = newHeaders(`outlook.timezone="UTC"`)
	// The request runs as the first mailbox; with application
	// permissions any mailbox of the tenant can be the anchor.
	resp, err := s.client.Users().ByUserId(mailboxes[0]).Calendar().GetSchedule().PostAsGetSchedulePostResponse(ctx, body, cfg)
	if err != nil {
		return nil, fmt.Errorf("graph getSchedule (%d mailboxes, anchor %s): %w", len(mailboxes), mailboxes[0], describe(err))
	}
	byID := map[string]models.ScheduleInformationable{}
	for _, si := range resp.GetValue() {
		if id := si.GetScheduleId(); id != nil {
			byID[strings.ToLower(*id)] = si
		}
	}
	out := make([]rules.MailboxFacts, len(mailboxes))
	for i, mb := range mailboxes {
		out[i].Mailbox = mb
		si, ok := byID[strings.ToLower(mb)]
		switch {
		case !ok:
			out[i].Err = fmt.Errorf("%w: %s is missing from the getSchedule answer", ErrMailbox, mb)
			continue
		case si.GetError() != nil:
			e := si.GetError()
			out[i].Err = fmt.Errorf("%w: %s: %s (%s)", ErrMailbox, mb, deref(e.GetMessage()), deref(e.GetResponseCode()))
			continue
		}
		view := availabilityView{view: deref(si.GetAvailabilityView()), start: start, slot: time.Duration(interval) * time.Minute}
		out[i].Events, out[i].Err = events(si.GetScheduleItems(), view)
		if wh := si.GetWorkingHours(); wh != nil && wh.GetTimeZone() != nil {
			if name := deref(wh.GetTimeZone().GetName()); name != "" {
				if loc, err := LoadZone(name); err == nil {
					out[i].Location = loc
				}
			}
		}
		markAllDay(out[i].Events, out[i].Location)
	}
	return out, nil
}

// availabilityView is getSchedule's digit string: one digit per slot from
// start, 0 free, 1 tentative, 2 busy, 3 oof (4 working elsewhere is
// reported as 0).
type availabilityView struct {
	view  string
	start time.Time
	slot  time.Duration
}

// showAs is the strongest state the view has during [from, to), for an
// item whose status the SDK could not parse: the SDK knows only the
// documented lower-case values, and a "Busy" (as in an older doc sample)
// must not make a meeting vanish. With no view, an item counts as busy.
func (v availabilityView) showAs(from, to time.Time) rules.ShowAs {
	if v.view == "" || v.slot <= 0 {
		return rules.ShowBusy
	}
	best := byte('0')
	for i := 0; i < len(v.view); i++ {
		s := v.start.Add(time.Duration(i) * v.slot)
		if s.Before(to) && s.Add(v.slot).After(from) && v.view[i] > best && v.view[i] <= '3' {
			best = v.view[i]
		}
	}
	return map[byte]rules.ShowAs{'0': rules.ShowFree, '1': rules.ShowTentative, '2': rules.ShowBusy, '3': rules.ShowOOF}[best]
}

// markAllDay flags events that run from midnight to midnight, whole days,
// in the mailbox's zone: getSchedule has no isAllDay, and the all-day
// policy must still apply.
func markAllDay(events []rules.Event, loc *time.Location) {
	if loc == nil {
		loc = time.UTC
	}
	midnight := func(t time.Time) bool {
		t = t.In(loc)
		return t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 && t.Nanosecond() == 0
	}
	for i := range events {
		e := &events[i]
		if midnight(e.Start) && midnight(e.End) && e.End.Sub(e.Start) >= 23*time.Hour {
			e.AllDay = true
		}
	}
}

// events converts schedule items; a malformed time is an error of the
// mailbox (its facts are not trusted), not of the request.
func events(items []models.ScheduleItemable, view availabilityView) ([]rules.Event, error) {
	out := make([]rules.Event, 0, len(items))
	for _, it := range items {
		start, err := parseDateTimeTZ(it.GetStart())
		if err != nil {
			return nil, fmt.Errorf("schedule item start: %w", err)
		}
		end, err := parseDateTimeTZ(it.GetEnd())
		if err != nil {
			return nil, fmt.Errorf("schedule item end: %w", err)
		}
		e := rules.Event{Start: start, End: end}
		if st := it.GetStatus(); st != nil {
			e.ShowAs = showAs(*st)
		} else {
			e.ShowAs = view.showAs(start, end)
		}
		e.Private = it.GetIsPrivate() != nil && *it.GetIsPrivate()
		if !e.Private {
			e.Subject, e.Location = deref(it.GetSubject()), deref(it.GetLocation())
		}
		out = append(out, e)
	}
	return out, nil
}

func showAs(s models.FreeBusyStatus) rules.ShowAs {
	switch s {
	case models.FREE_FREEBUSYSTATUS:
		return rules.ShowFree
	case models.TENTATIVE_FREEBUSYSTATUS:
		return rules.ShowTentative
	case models.BUSY_FREEBUSYSTATUS:
		return rules.ShowBusy
	case models.OOF_FREEBUSYSTATUS:
		return rules.ShowOOF
	case models.WORKINGELSEWHERE_FREEBUSYSTATUS:
		return rules.ShowWorkingElsewhere
	}
	return rules.ShowUnknown
}

// AutoReplies reads the automatic-reply setting of up to MailTipsBatch
// mailboxes with one getMailTips request, or of up to MaxBatch with one
// $batch of mailboxSettings (Config.AutoReplies).
func (s *Source) AutoReplies(ctx context.Context, mailboxes []string) ([]rules.MailboxFacts, error) {
	if len(mailboxes) == 0 {
		return nil, nil
	}
	if s.cfg.AutoReplies == "mailbox_settings" {
		if len(mailboxes) > MaxBatch {
			return nil, fmt.Errorf("graph: a $batch takes at most %d requests, not %d", MaxBatch, len(mailboxes))
		}
		return s.autoRepliesBySettings(ctx, mailboxes)
	}
	if len(mailboxes) > s.cfg.MailTipsBatch {
		return nil, fmt.Errorf("graph: getMailTips batch of %d is over the configured %d", len(mailboxes), s.cfg.MailTipsBatch)
	}
	return anchored(mailboxes, func(batch []string) ([]rules.MailboxFacts, error) { return s.mailTips(ctx, batch) })
}

func (s *Source) mailTips(ctx context.Context, mailboxes []string) ([]rules.MailboxFacts, error) {
	body := users.NewItemGetMailTipsPostRequestBody()
	body.SetEmailAddresses(mailboxes)
	opt := models.MailTipsType(models.AUTOMATICREPLIES_MAILTIPSTYPE)
	body.SetMailTipsOptions(&opt)
	cfg := &users.ItemGetMailTipsRequestBuilderPostRequestConfiguration{Headers: newHeaders(`outlook.timezone="UTC"`)}
	resp, err := s.client.Users().ByUserId(mailboxes[0]).GetMailTips().PostAsGetMailTipsPostResponse(ctx, body, cfg)
	if err != nil {
		return nil, fmt.Errorf("graph getMailTips (%d mailboxes, anchor %s): %w", len(mailboxes), mailboxes[0], describe(err))
	}
	byAddr := map[string]models.MailTipsable{}
	for _, mt := range resp.GetValue() {
		if ea := mt.GetEmailAddress(); ea != nil && ea.GetAddress() != nil {
			byAddr[strings.ToLower(*ea.GetAddress())] = mt
		}
	}
	out := make([]rules.MailboxFacts, len(mailboxes))
	for i, mb := range mailboxes {
		out[i].Mailbox = mb
		mt, ok := byAddr[strings.ToLower(mb)]
		switch {
		case !ok:
			out[i].Err = fmt.Errorf("%w: %s is missing from the getMailTips answer", ErrMailbox, mb)
			continue
		case mt.GetError() != nil:
			e := mt.GetError()
			out[i].Err = fmt.Errorf("%w: %s: %s (%s)", ErrMailbox, mb, deref(e.GetMessage()), deref(e.GetCode()))
			continue
		}
		out[i].AutoReply, out[i].Err = autoReply(mt.GetAutomaticReplies())
	}
	return out, nil
}

// autoReply turns mail tips into the setting: no message means off; a
// message with a schedule is scheduled; without, always on.
func autoReply(ar models.AutomaticRepliesMailTipsable) (rules.AutoReply, error) {
	if ar == nil || strings.TrimSpace(deref(ar.GetMessage())) == "" {
		return rules.AutoReply{Status: rules.AutoReplyDisabled}, nil
	}
	r := rules.AutoReply{Status: rules.AutoReplyAlways, Message: HTMLToText(deref(ar.GetMessage()))}
	if ar.GetScheduledStartTime() != nil && ar.GetScheduledEndTime() != nil {
		var err error
		r.Status = rules.AutoReplyScheduled
		if r.Start, r.End, err = window(ar.GetScheduledStartTime(), ar.GetScheduledEndTime()); err != nil {
			return r, err
		}
	}
	return r, nil
}

// window reads the scheduled start and end of automatic replies.
func window(start, end models.DateTimeTimeZoneable) (time.Time, time.Time, error) {
	s, err := parseDateTimeTZ(start)
	if err != nil {
		return s, s, fmt.Errorf("automatic replies start: %w", err)
	}
	e, err := parseDateTimeTZ(end)
	if err != nil {
		return s, e, fmt.Errorf("automatic replies end: %w", err)
	}
	return s, e, nil
}

// dateTimeTZ is a Graph dateTimeTimeZone in UTC.
func dateTimeTZ(t time.Time) models.DateTimeTimeZoneable {
	d := models.NewDateTimeTimeZone()
	s := t.UTC().Format("2006-01-02T15:04:05")
	tz := "UTC"
	d.SetDateTime(&s)
	d.SetTimeZone(&tz)
	return d
}

// parseDateTimeTZ reads a Graph dateTimeTimeZone ("2018-08-06T09:00:00.0000000"
// in a named zone, Windows or IANA).
func parseDateTimeTZ(d models.DateTimeTimeZoneable) (time.Time, error) {
	if d == nil || d.GetDateTime() == nil {
		return time.Time{}, errors.New("missing dateTime")
	}
	loc := time.UTC
	if tz := deref(d.GetTimeZone()); tz != "" && !strings.EqualFold(tz, "UTC") {
		l, err := LoadZone(tz)
		if err != nil {
			return time.Time{}, err
		}
		loc = l
	}
	t, err := time.ParseInLocation("2006-01-02T15:04:05.9999999", *d.GetDateTime(), loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("dateTime %q: %w", *d.GetDateTime(), err)
	}
	return t, nil
}

// describe shortens SDK errors to what an operator needs: the HTTP status
// and Graph's error code and message.
func describe(err error) error {
	var odata interface {
		GetStatusCode() int
		GetErrorEscaped() odataerrors.MainErrorable
	}
	if errors.As(err, &odata) {
		if me := odata.GetErrorEscaped(); me != nil {
			return &StatusError{Status: odata.GetStatusCode(), Code: deref(me.GetCode()), Message: deref(me.GetMessage()), err: err}
		}
		return &StatusError{Status: odata.GetStatusCode(), err: err}
	}
	var api interface{ GetStatusCode() int }
	if errors.As(err, &api) {
		return &StatusError{Status: api.GetStatusCode(), err: err}
	}
	return err
}

// StatusError is a Graph request that failed with an HTTP status.
type StatusError struct {
	Status        int
	Code, Message string
	err           error
}

func (e *StatusError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
	}
	return fmt.Sprintf("HTTP %d", e.Status)
}

// Unwrap returns the SDK's error.
func (e *StatusError) Unwrap() error { return e.err }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// newHeaders makes request headers with a Prefer value.
func newHeaders(prefer string) *abs.RequestHeaders {
	h := abs.NewRequestHeaders()
	h.Add("Prefer", prefer)
	return h
}
