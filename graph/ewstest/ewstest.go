// Package ewstest is a fake Exchange Web Services endpoint for tests: an
// httptest TLS server at /EWS/Exchange.asmx that speaks SOAP as Exchange
// does — GetUserAvailability and GetMailTips, SOAP faults — with answers
// laid out as the real-server and documentation samples are (the research
// notes' fixtures C–F: WinRb/Viewpoint's recorded GetUserAvailability
// answers, the GetMailTips and GetUserAvailability doc pages, exchangelib's
// ErrorServerBusy fault), filled per mailbox from a table the test sets.
//
// It checks what a real server would refuse: the SOAP and EWS namespaces
// (a request in the wrong one does not match the schema, so it gets
// ErrorSchemaValidation), RequestServerVersion, the impersonation header
// when one is required, the request's limits (100 mailboxes, 42 days, the
// mail tips recipient limit), and the configured authentication: NTLM
// (the real handshake, see ntlm.go), Basic, or a Bearer token. Faults can
// be injected: ErrorServerBusy with BackOffMilliseconds, other EWS
// errors, HTTP statuses (503 …).
package ewstest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Path is where the fake serves EWS.
const Path = "/EWS/Exchange.asmx"

// Auth schemes the fake can demand.
const (
	AuthNTLM   = "ntlm"
	AuthBasic  = "basic"
	AuthBearer = "bearer"
)

// Event is a calendar item of a fake mailbox.
type Event struct {
	Start, End time.Time
	// BusyType as EWS writes it: Free, Tentative, Busy, OOF,
	// WorkingElsewhere, NoData.
	BusyType  string
	Subject   string
	Location  string
	IsPrivate bool
	IsMeeting bool
}

// OOF is a fake mailbox's automatic reply; zero Start and End mean always
// on (no Duration), else it is scheduled.
type OOF struct {
	Message    string
	Start, End time.Time
}

// Mailbox is a fake mailbox.
type Mailbox struct {
	Events []Event
	// TimeZone is the mailbox's zone, sent in WorkingHours as a
	// SerializableTimeZone; nil sends no WorkingHours.
	TimeZone *time.Location
	// View is the FreeBusyViewType answered: "" for DetailedMerged (as
	// asked); "FreeBusyMerged" drops the details (subject, location), as
	// for a caller with free/busy rights only; "MergedOnly" sends only the
	// merged digits.
	View string
	// ErrorCode makes GetUserAvailability answer an error for the mailbox
	// ("ErrorNoFreeBusyAccess", "ErrorMailRecipientNotFound" …).
	ErrorCode string
	OOF       *OOF
	// MailTipsErrorCode makes GetMailTips answer an error for it.
	MailTipsErrorCode string
	// PendingMailTips marks its OOF mail tip as not evaluated in time.
	PendingMailTips bool
}

// Fault is an injected failure.
type Fault struct {
	// Code answers an EWS error as a SOAP fault with HTTP 500
	// ("ErrorServerBusy", "ErrorInternalServerTransientError" …).
	Code string
	// BackOff is ErrorServerBusy's BackOffMilliseconds.
	BackOff time.Duration
	// InMessage answers Code inside each item's ResponseMessage (HTTP 200)
	// instead of as a fault, as Exchange sometimes reports ErrorServerBusy.
	InMessage bool
	// Status answers this HTTP status (503, 502, 401 …) when Code is "".
	Status int
	// RetryAfter is a Retry-After header for Status.
	RetryAfter string
	// Operation limits the fault to one operation ("" any).
	Operation string
}

// Request is one SOAP request the fake answered (NTLM handshake legs are
// not requests; see Exchanges).
type Request struct {
	Operation string
	Mailboxes []string
	Status    int
	// Version is the RequestServerVersion; Impersonated the SmtpAddress of
	// ExchangeImpersonation; TimeZoneContext the TimeZoneDefinition Id.
	Version, Impersonated, TimeZoneContext string
	// AnchorMailbox is the X-AnchorMailbox header.
	AnchorMailbox string
	// Auth is how the request was authenticated: "NTLM" (on the
	// connection), "Basic", "Bearer".
	Auth string
	// SendingAs is GetMailTips' sender.
	SendingAs string
	// Start and End are GetUserAvailability's TimeWindow.
	Start, End time.Time
	Time       time.Time
}

// Server is the fake EWS.
type Server struct {
	*httptest.Server
	// Auth is the scheme demanded (AuthNTLM by default).
	Auth string
	// Domain, Username and Password are the account for NTLM (DOMAIN\user)
	// and Basic (Username as given to SetBasicAuth, Domain ignored).
	Domain, Username, Password string
	// Token is the accepted bearer token.
	Token string
	// RequireImpersonation, when set, is the SmtpAddress GetMailTips must
	// impersonate.
	RequireImpersonation string
	// MaxMailTips is the recipients GetMailTips accepts (default 50, the
	// MaxRecipientsPerGetMailTipsRequest Exchange reports).
	MaxMailTips int
	// OffsetTimes writes times with their offset ("…T06:00:00-07:00", as
	// the GetUserAvailability doc sample) instead of zone-less local times
	// (as recorded real servers do).
	OffsetTimes bool
	// Now is the server's clock, for automatic replies (default time.Now).
	Now func() time.Time

	mu        sync.Mutex
	mailboxes map[string]*Mailbox
	faults    []Fault
	requests  []Request
	exchanges int
	handshake int
}

type connKey struct{}

// New starts a fake EWS on 127.0.0.1 with TLS, demanding NTLM as
// EXAMPLE\svc-presence with password "s3cret!"; it stops when the test
// ends.
func New(t testing.TB) *Server {
	s := &Server{Auth: AuthNTLM, Domain: "EXAMPLE", Username: "svc-presence", Password: "s3cret!", Token: "ewstest-token",
		MaxMailTips: 50, mailboxes: map[string]*Mailbox{}, Now: time.Now}
	mux := http.NewServeMux()
	mux.HandleFunc(Path, s.serve)
	s.Server = httptest.NewUnstartedServer(mux)
	// TLS handshakes a test refuses on purpose are not worth a log line.
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.Config.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, &connState{})
	}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

// EWSURL is the endpoint to configure.
func (s *Server) EWSURL() string { return s.URL + Path }

// CAFile writes the server's certificate as a PEM CA file and returns its
// path.
func (s *Server) CAFile(t testing.TB) string {
	p := filepath.Join(t.TempDir(), "ewstest-ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// SetMailbox creates or replaces a mailbox.
func (s *Server) SetMailbox(address string, m Mailbox) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mailboxes[strings.ToLower(address)] = &m
}

// Fail makes the next n requests (of f.Operation, or any) fail with f.
func (s *Server) Fail(n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, f)
	}
}

// Requests returns the SOAP requests answered so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Exchanges is every HTTP request the fake got, NTLM legs included;
// Handshakes the NTLM handshakes completed.
func (s *Server) Exchanges() (exchanges, handshakes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exchanges, s.handshake
}

// unauthorized answers 401 as IIS does, with an HTML body.
func unauthorized(w http.ResponseWriter, challenges ...string) {
	for _, c := range challenges {
		w.Header().Add("WWW-Authenticate", c)
	}
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = io.WriteString(w, "<!DOCTYPE html><html><head><title>401 - Unauthorized: Access is denied due to invalid credentials.</title></head>"+
		"<body><h2>401 - Unauthorized: Access is denied due to invalid credentials.</h2></body></html>")
}

// authenticate checks the request's credentials as configured; false
// means it answered (a 401 or an NTLM challenge).
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (string, bool) {
	switch s.Auth {
	case AuthBasic:
		u, p, ok := r.BasicAuth()
		if !ok || u != s.Username || p != s.Password {
			unauthorized(w, `Basic realm="127.0.0.1"`)
			return "", false
		}
		return "Basic", true
	case AuthBearer:
		if r.Header.Get("Authorization") != "Bearer "+s.Token {
			unauthorized(w, `Bearer client_id="00000002-0000-0ff1-ce00-000000000000", token_types="app_asserted_user_v1 service_asserted_app_v1", error="invalid_token"`)
			return "", false
		}
		return "Bearer", true
	}
	cs := r.Context().Value(connKey{}).(*connState)
	if cs.user != "" && r.Header.Get("Authorization") == "" {
		return "NTLM", true // the connection is authenticated
	}
	scheme, msg, ok := ntlmToken(r.Header.Get("Authorization"))
	if !ok {
		unauthorized(w, "Negotiate", "NTLM")
		return "", false
	}
	typ, err := ntlmMessageType(msg)
	switch {
	case err == nil && typ == 1:
		cs.challenge, cs.user = newChallenge(), ""
		unauthorized(w, scheme+" "+base64.StdEncoding.EncodeToString(challengeMessage(cs.challenge, s.Domain, "EXCH01", s.Now())))
		return "", false
	case err == nil && typ == 3 && cs.challenge != nil:
		user, err := authenticate(msg, cs.challenge, s.Domain, s.Username, s.Password)
		cs.challenge = nil
		if err != nil {
			unauthorized(w, "Negotiate", "NTLM")
			return "", false
		}
		cs.user = user
		s.mu.Lock()
		s.handshake++
		s.mu.Unlock()
		return "NTLM", true
	}
	unauthorized(w, "Negotiate", "NTLM")
	return "", false
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.exchanges++
	s.mu.Unlock()
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "EWS takes POST", http.StatusMethodNotAllowed)
		return
	}
	auth, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	rec := Request{Auth: auth, AnchorMailbox: r.Header.Get("X-AnchorMailbox"), Time: time.Now()}
	defer func() {
		s.mu.Lock()
		s.requests = append(s.requests, rec)
		s.mu.Unlock()
	}()
	var env requestEnvelope
	err = xml.Unmarshal(body, &env)
	if ct := r.Header.Get("Content-Type"); err == nil && !strings.HasPrefix(ct, "text/xml") {
		err = fmt.Errorf("Content-Type %q is not text/xml", ct)
	}
	if err != nil {
		rec.Status = fault(w, "ErrorSchemaValidation", "The request failed schema validation: "+err.Error(), 0)
		return
	}
	rec.Operation = env.operation()
	if h := env.Header; h != nil {
		if h.Version != nil {
			rec.Version = h.Version.Version
		}
		if h.Impersonation != nil && h.Impersonation.SID != nil {
			rec.Impersonated = h.Impersonation.SID.SmtpAddress
		}
		if h.TimeZoneContext != nil && h.TimeZoneContext.Definition != nil {
			rec.TimeZoneContext = h.TimeZoneContext.Definition.ID
		}
	}
	switch {
	case rec.Operation == "":
		rec.Status = fault(w, "ErrorSchemaValidation", "The request failed schema validation: no known operation in the SOAP body (wrong namespace?).", 0)
		return
	case !knownVersions[rec.Version]:
		rec.Status = fault(w, "ErrorSchemaValidation", fmt.Sprintf("The request failed schema validation: RequestServerVersion %q.", rec.Version), 0)
		return
	case rec.TimeZoneContext != "" && rec.TimeZoneContext != "UTC":
		rec.Status = fault(w, "ErrorTimeZone", "ewstest knows the UTC TimeZoneDefinition only, not "+rec.TimeZoneContext, 0)
		return
	}
	if f := s.takeFault(rec.Operation); f != nil {
		switch {
		case f.Code != "" && !f.InMessage:
			rec.Status = fault(w, f.Code, faultText(f.Code), f.BackOff)
			return
		case f.Code == "":
			if f.RetryAfter != "" {
				w.Header().Set("Retry-After", f.RetryAfter)
			}
			if f.Status == http.StatusUnauthorized {
				unauthorized(w, "Negotiate", "NTLM")
			} else {
				http.Error(w, "ewstest: injected "+http.StatusText(f.Status), f.Status)
			}
			rec.Status = f.Status
			return
		}
		rec.Status = s.busyMessages(w, &env, f)
		return
	}
	switch rec.Operation {
	case "GetUserAvailability":
		rec.Status = s.getUserAvailability(w, env.Body.Availability, &rec)
	case "GetMailTips":
		rec.Status = s.getMailTips(w, env.Body.MailTips, &rec)
	}
}

func (s *Server) takeFault(op string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.Operation == "" || f.Operation == op {
			s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			return &f
		}
	}
	return nil
}

var knownVersions = map[string]bool{"Exchange2010": true, "Exchange2010_SP1": true, "Exchange2010_SP2": true,
	"Exchange2013": true, "Exchange2013_SP1": true, "Exchange2016": true, "Exchange2019": true}

func faultText(code string) string {
	switch code {
	case "ErrorServerBusy":
		return "The server cannot service this request right now. Try again later."
	case "ErrorInternalServerTransientError":
		return "An internal server error occurred. Try again later."
	case "ErrorImpersonateUserDenied":
		return "The account does not have permission to impersonate the requested user."
	}
	return "ewstest: injected " + code
}

// Namespaces as real servers use them.
const (
	nsSOAP   = "http://schemas.xmlsoap.org/soap/envelope/"
	nsTypes  = "http://schemas.microsoft.com/exchange/services/2006/types"
	nsErrors = "http://schemas.microsoft.com/exchange/services/2006/errors"
	nsMsgs   = "http://schemas.microsoft.com/exchange/services/2006/messages"
)

// requestEnvelope is what the fake reads of a request, with the
// namespaces EWS's schema demands.
type requestEnvelope struct {
	XMLName xml.Name `xml:"http://schemas.xmlsoap.org/soap/envelope/ Envelope"`
	Header  *struct {
		Version *struct {
			Version string `xml:"Version,attr"`
		} `xml:"http://schemas.microsoft.com/exchange/services/2006/types RequestServerVersion"`
		Impersonation *struct {
			SID *struct {
				SmtpAddress string `xml:"http://schemas.microsoft.com/exchange/services/2006/types SmtpAddress"`
			} `xml:"http://schemas.microsoft.com/exchange/services/2006/types ConnectingSID"`
		} `xml:"http://schemas.microsoft.com/exchange/services/2006/types ExchangeImpersonation"`
		TimeZoneContext *struct {
			Definition *struct {
				ID string `xml:"Id,attr"`
			} `xml:"http://schemas.microsoft.com/exchange/services/2006/types TimeZoneDefinition"`
		} `xml:"http://schemas.microsoft.com/exchange/services/2006/types TimeZoneContext"`
	} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Header"`
	Body struct {
		Availability *availabilityRequest `xml:"http://schemas.microsoft.com/exchange/services/2006/messages GetUserAvailabilityRequest"`
		MailTips     *mailTipsRequest     `xml:"http://schemas.microsoft.com/exchange/services/2006/messages GetMailTips"`
	} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
}

func (e *requestEnvelope) operation() string {
	switch {
	case e.Body.Availability != nil:
		return "GetUserAvailability"
	case e.Body.MailTips != nil:
		return "GetMailTips"
	}
	return ""
}

type tzTime struct {
	Bias      *int   `xml:"http://schemas.microsoft.com/exchange/services/2006/types Bias"`
	Time      string `xml:"http://schemas.microsoft.com/exchange/services/2006/types Time"`
	DayOrder  int    `xml:"http://schemas.microsoft.com/exchange/services/2006/types DayOrder"`
	Month     int    `xml:"http://schemas.microsoft.com/exchange/services/2006/types Month"`
	DayOfWeek string `xml:"http://schemas.microsoft.com/exchange/services/2006/types DayOfWeek"`
}

type availabilityRequest struct {
	TimeZone *struct {
		Bias     *int    `xml:"http://schemas.microsoft.com/exchange/services/2006/types Bias"`
		Standard *tzTime `xml:"http://schemas.microsoft.com/exchange/services/2006/types StandardTime"`
		Daylight *tzTime `xml:"http://schemas.microsoft.com/exchange/services/2006/types DaylightTime"`
	} `xml:"http://schemas.microsoft.com/exchange/services/2006/types TimeZone"`
	Array *struct {
		Data []struct {
			Address      string `xml:"http://schemas.microsoft.com/exchange/services/2006/types Email>Address"`
			AttendeeType string `xml:"http://schemas.microsoft.com/exchange/services/2006/types AttendeeType"`
		} `xml:"http://schemas.microsoft.com/exchange/services/2006/types MailboxData"`
	} `xml:"http://schemas.microsoft.com/exchange/services/2006/messages MailboxDataArray"`
	Options *struct {
		Start    string `xml:"http://schemas.microsoft.com/exchange/services/2006/types TimeWindow>StartTime"`
		End      string `xml:"http://schemas.microsoft.com/exchange/services/2006/types TimeWindow>EndTime"`
		Interval int    `xml:"http://schemas.microsoft.com/exchange/services/2006/types MergedFreeBusyIntervalInMinutes"`
		View     string `xml:"http://schemas.microsoft.com/exchange/services/2006/types RequestedView"`
	} `xml:"http://schemas.microsoft.com/exchange/services/2006/types FreeBusyViewOptions"`
}

type mailTipsRequest struct {
	SendingAs *struct {
		Address string `xml:"http://schemas.microsoft.com/exchange/services/2006/types EmailAddress"`
	} `xml:"http://schemas.microsoft.com/exchange/services/2006/messages SendingAs"`
	Recipients *struct {
		Mailboxes []struct {
			Address string `xml:"http://schemas.microsoft.com/exchange/services/2006/types EmailAddress"`
		} `xml:"http://schemas.microsoft.com/exchange/services/2006/types Mailbox"`
	} `xml:"http://schemas.microsoft.com/exchange/services/2006/messages Recipients"`
	Requested string `xml:"http://schemas.microsoft.com/exchange/services/2006/messages MailTipsRequested"`
}

// busyMessages answers f.Code inside every item's ResponseMessage.
func (s *Server) busyMessages(w http.ResponseWriter, env *requestEnvelope, f *Fault) int {
	var b bytes.Buffer
	b.WriteString(head)
	item := func() {
		fmt.Fprintf(&b, `    <ResponseMessage ResponseClass="Error">
      <MessageText>%s</MessageText>
      <ResponseCode>%s</ResponseCode>
      <DescriptiveLinkKey>0</DescriptiveLinkKey>
      <MessageXml>
        <Value xmlns="%s" Name="BackOffMilliseconds">%d</Value>
      </MessageXml>
    </ResponseMessage>
`, esc(faultText(f.Code)), esc(f.Code), nsTypes, f.BackOff.Milliseconds())
	}
	if a := env.Body.Availability; a != nil {
		b.WriteString(`    <GetUserAvailabilityResponse xmlns="` + nsMsgs + "\">\n<FreeBusyResponseArray>\n")
		n := 1
		if a.Array != nil {
			n = max(len(a.Array.Data), 1)
		}
		for range n {
			b.WriteString("  <FreeBusyResponse>\n")
			item()
			b.WriteString("    <FreeBusyView>\n      <FreeBusyViewType xmlns=\"" + nsTypes + "\">None</FreeBusyViewType>\n    </FreeBusyView>\n  </FreeBusyResponse>\n")
		}
		b.WriteString("</FreeBusyResponseArray>\n    </GetUserAvailabilityResponse>\n")
	} else {
		b.WriteString(`    <GetMailTipsResponse ResponseClass="Success" xmlns="` + nsMsgs + "\">\n      <ResponseCode>NoError</ResponseCode>\n      <ResponseMessages>\n")
		b.WriteString("        <MailTipsResponseMessageType ResponseClass=\"Error\">\n")
		item()
		b.WriteString("        </MailTipsResponseMessageType>\n      </ResponseMessages>\n    </GetMailTipsResponse>\n")
	}
	b.WriteString(tail)
	return writeXML(w, http.StatusOK, b.Bytes())
}

// head and tail wrap every successful answer: the envelope of the
// recorded real-server answers (fixture D), with the ServerVersionInfo of
// an Exchange 2016 CU.
const head = `<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">
  <s:Header>
    <h:ServerVersionInfo xmlns:h="http://schemas.microsoft.com/exchange/services/2006/types" xmlns="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" MajorVersion="15" MinorVersion="1" MajorBuildNumber="2507" MinorBuildNumber="6" />
  </s:Header>
  <s:Body xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">
`

const tail = `  </s:Body>
</s:Envelope>
`

// fault answers a SOAP fault as fixture F lays it out (HTTP 500).
func fault(w http.ResponseWriter, code, text string, backOff time.Duration) int {
	var b bytes.Buffer
	fmt.Fprintf(&b, `<?xml version='1.0' encoding='utf-8'?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">
  <s:Body>
    <s:Fault>
      <faultcode xmlns:a="%s">a:%s</faultcode>
      <faultstring xml:lang="en-US">%s</faultstring>
      <detail>
        <e:ResponseCode xmlns:e="%s">
          %s
        </e:ResponseCode>
        <e:Message xmlns:e="%s">
          %s
        </e:Message>
`, nsTypes, esc(code), esc(text), nsErrors, esc(code), nsErrors, esc(text))
	if backOff > 0 {
		fmt.Fprintf(&b, `        <t:MessageXml xmlns:t="%s">
          <t:Value Name="BackOffMilliseconds">%d</t:Value>
        </t:MessageXml>
`, nsTypes, backOff.Milliseconds())
	}
	b.WriteString("      </detail>\n    </s:Fault>\n  </s:Body>\n</s:Envelope>\n")
	return writeXML(w, http.StatusInternalServerError, b.Bytes())
}

func writeXML(w http.ResponseWriter, status int, body []byte) int {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return status
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func boolText(v bool) string {
	if v {
		return "true"
	}
	return "false"
}
