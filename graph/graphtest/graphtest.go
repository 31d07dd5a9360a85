// Package graphtest is a fake Microsoft Graph for tests: an httptest TLS
// server that speaks the wire format of the endpoints the gateway uses —
// the Entra ID client-credentials token endpoint (with its OpenID
// metadata), users/{id}/calendar/getSchedule and users/{id}/getMailTips —
// as Microsoft's documentation shows them, with programmable calendars and
// injected faults (429 with Retry-After, 5xx, per-mailbox errors).
package graphtest

import (
	"compress/gzip"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Item is one calendar item of a fake mailbox.
type Item struct {
	Start, End time.Time
	// Status as Graph writes it: free, tentative, busy, oof,
	// workingElsewhere, unknown.
	Status    string
	IsPrivate bool
	Subject   string
	Location  string
}

// AutoReply is a fake mailbox's automatic reply; zero Start/End means
// always on.
type AutoReply struct {
	Message    string
	Start, End time.Time
}

// Mailbox is a fake mailbox.
type Mailbox struct {
	Items []Item
	// TimeZone as Graph names it in workingHours ("W. Europe Standard Time").
	TimeZone  string
	AutoReply *AutoReply
	// ErrorCode makes getSchedule and getMailTips report a per-mailbox
	// error (e.g. "ErrorAccessDenied") for it.
	ErrorCode string
}

// Request is one Graph API request the fake answered.
type Request struct {
	Method, Path string
	// Mailboxes asked for (schedules or email addresses).
	Mailboxes []string
	Status    int
	Time      time.Time
}

type fault struct {
	status     int
	retryAfter string
}

// Server is the fake Graph.
type Server struct {
	*httptest.Server
	TenantID, ClientID, ClientSecret string

	mu        sync.Mutex
	mailboxes map[string]*Mailbox
	faults    []fault
	// itemFaults are for requests inside a $batch.
	itemFaults []fault
	requests   []Request
	tokens     int
	// MaxMailTips is the most addresses getMailTips accepts (default 100).
	MaxMailTips int
	// AppCertificate, when set, is the app's certificate: client
	// assertions signed with its key are accepted instead of the secret.
	AppCertificate *x509.Certificate
}

// New starts a fake Graph on 127.0.0.1 and stops it when the test ends.
func New(t testing.TB) *Server {
	s := &Server{TenantID: "11111111-2222-3333-4444-555555555555", ClientID: "presencegw-test",
		ClientSecret: "s3cret", mailboxes: map[string]*Mailbox{}, MaxMailTips: 100}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", s.openID)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.token)
	mux.HandleFunc("POST /v1.0/users/{id}/calendar/getSchedule", s.api(s.getSchedule))
	mux.HandleFunc("POST /v1.0/users/{id}/getMailTips", s.api(s.getMailTips))
	mux.HandleFunc("POST /v1.0/$batch", s.api(s.batch))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		graphError(w, http.StatusNotFound, "Request_UnsupportedQuery", "graphtest: no route for "+r.Method+" "+r.URL.Path)
	})
	s.Server = httptest.NewTLSServer(mux)
	t.Cleanup(s.Close)
	return s
}

// BaseURL is the Graph endpoint to configure ("https://127.0.0.1:N/v1.0").
func (s *Server) BaseURL() string { return s.URL + "/v1.0" }

// AuthorityHost is the login host to configure.
func (s *Server) AuthorityHost() string { return s.URL + "/" }

// SetMailbox creates or replaces a mailbox.
func (s *Server) SetMailbox(address string, m Mailbox) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mailboxes[strings.ToLower(address)] = &m
}

// Fail makes the next n API requests fail with status (and Retry-After
// when retryAfter is not empty).
func (s *Server) Fail(n, status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{status, retryAfter})
	}
}

// FailItems makes the next n requests inside $batch requests fail with
// status (and Retry-After), while the $batch itself succeeds — as Graph
// throttles batched requests one by one.
func (s *Server) FailItems(n, status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.itemFaults = append(s.itemFaults, fault{status, retryAfter})
	}
}

// Requests returns the API requests answered so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Tokens is how many access tokens were issued.
func (s *Server) Tokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens
}

func (s *Server) openID(w http.ResponseWriter, r *http.Request) {
	base := s.URL + "/" + r.PathValue("tenant")
	writeJSON(w, http.StatusOK, map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"issuer":                                base + "/v2.0",
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"response_types_supported":              []string{"code", "id_token", "token"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"tenant_region_scope":                   "EU",
	})
}

// token is the client-credentials grant of Entra ID (v2.0 endpoint).
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, "invalid_request", err.Error())
		return
	}
	switch {
	case r.PathValue("tenant") != s.TenantID:
		oauthError(w, "invalid_tenant", "AADSTS90002: Tenant '"+r.PathValue("tenant")+"' not found.")
	case r.Form.Get("grant_type") != "client_credentials":
		oauthError(w, "unsupported_grant_type", "grant_type must be client_credentials")
	case r.Form.Get("client_id") != s.ClientID:
		oauthError(w, "unauthorized_client", "AADSTS700016: Application with identifier '"+r.Form.Get("client_id")+"' was not found")
	case r.Form.Get("client_assertion") != "":
		if err := s.checkAssertion(r.Form.Get("client_assertion"), s.URL+r.URL.Path); err != nil {
			oauthError(w, "invalid_client", "AADSTS700027: Client assertion failed signature validation: "+err.Error())
			return
		}
		s.issue(w)
	case r.Form.Get("client_secret") != s.ClientSecret:
		oauthError(w, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
	case !hasDefaultScope(r.Form.Get("scope")):
		oauthError(w, "invalid_scope", "AADSTS1002012: The provided value for scope is not valid: "+r.Form.Get("scope"))
	default:
		s.issue(w)
	}
}

func (s *Server) issue(w http.ResponseWriter) {
	s.mu.Lock()
	s.tokens++
	n := s.tokens
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
		"access_token": fmt.Sprintf("graphtest-token-%d", n)})
}

// checkAssertion verifies a certificate credential's client assertion:
// an RS256 JWT signed with the key of s.Certificate, for this client and
// this token endpoint.
func (s *Server) checkAssertion(jwt, endpoint string) error {
	if s.AppCertificate == nil {
		return errors.New("no certificate registered for the app")
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return errors.New("not a JWT")
	}
	var header struct{ Alg string }
	var claims struct {
		Aud, Iss, Sub string
		Exp           int64
	}
	for i, v := range []any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, v); err != nil {
			return err
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return err
	}
	pub, ok := s.AppCertificate.PublicKey.(*rsa.PublicKey)
	if !ok || header.Alg != "RS256" && header.Alg != "PS256" {
		return fmt.Errorf("alg %s with %T", header.Alg, s.AppCertificate.PublicKey)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if header.Alg == "PS256" {
		err = rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, nil)
	} else {
		err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig)
	}
	switch {
	case err != nil:
		return fmt.Errorf("signature: %w", err)
	case claims.Iss != s.ClientID || claims.Sub != s.ClientID:
		return fmt.Errorf("iss/sub %s/%s", claims.Iss, claims.Sub)
	case claims.Aud != endpoint:
		return fmt.Errorf("aud %s, want %s", claims.Aud, endpoint)
	case time.Unix(claims.Exp, 0).Before(time.Now()):
		return errors.New("expired")
	}
	return nil
}

// hasDefaultScope checks for the "<resource>/.default" scope that the
// client-credentials grant needs (MSAL adds openid, offline_access and
// profile, which Entra ID accepts).
func hasDefaultScope(scope string) bool {
	for _, s := range strings.Fields(scope) {
		if strings.HasSuffix(s, "/.default") {
			return true
		}
	}
	return false
}

func oauthError(w http.ResponseWriter, code, desc string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": code, "error_description": desc, "error_codes": []int{0}})
}

// api wraps a Graph endpoint: bearer token check, injected faults, the
// request log.
func (s *Server) api(h func(w http.ResponseWriter, r *http.Request) (int, []string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rec := Request{Method: r.Method, Path: r.URL.Path, Time: time.Now()}
		defer func() {
			s.mu.Lock()
			s.requests = append(s.requests, rec)
			s.mu.Unlock()
		}()
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer graphtest-token-") {
			rec.Status = http.StatusUnauthorized
			graphError(w, rec.Status, "InvalidAuthenticationToken", "Access token is empty.")
			return
		}
		if r.Header.Get("Content-Encoding") == "gzip" {
			// The SDK compresses request bodies; Graph accepts that.
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				rec.Status = http.StatusBadRequest
				graphError(w, rec.Status, "BadRequest", "graphtest: gzip body: "+err.Error())
				return
			}
			r.Body = zr
		}
		s.mu.Lock()
		var f *fault
		if len(s.faults) > 0 {
			f = &s.faults[0]
			s.faults = s.faults[1:]
		}
		s.mu.Unlock()
		if f != nil {
			rec.Status = f.status
			if f.retryAfter != "" {
				w.Header().Set("Retry-After", f.retryAfter)
			}
			code := map[int]string{429: "TooManyRequests", 503: "ServiceNotAvailable", 504: "GatewayTimeout"}[f.status]
			graphError(w, f.status, code, "graphtest: injected fault")
			return
		}
		if id := r.PathValue("id"); id != "" {
			// The user the request runs as must exist and be in scope.
			s.mu.Lock()
			mb, ok := s.mailboxes[strings.ToLower(id)]
			s.mu.Unlock()
			switch {
			case !ok:
				rec.Status = http.StatusNotFound
				graphError(w, rec.Status, "ErrorInvalidUser", "The requested user '"+id+"' is invalid.")
				return
			case mb.ErrorCode != "":
				rec.Status = http.StatusForbidden
				graphError(w, rec.Status, "ErrorAccessDenied", "Access to OData is disabled: "+mb.ErrorCode)
				return
			}
		}
		rec.Status, rec.Mailboxes = h(w, r)
	}
}

func graphError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg,
		"innerError": map[string]any{"date": time.Now().UTC().Format("2006-01-02T15:04:05"), "request-id": "graphtest"}}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type dateTimeTimeZone struct {
	DateTime string `json:"dateTime"`
	TimeZone string `json:"timeZone"`
}

func (d dateTimeTimeZone) time() (time.Time, error) {
	loc := time.UTC
	if d.TimeZone != "" && d.TimeZone != "UTC" {
		l, err := time.LoadLocation(d.TimeZone)
		if err != nil {
			return time.Time{}, fmt.Errorf("timeZone %q not supported by graphtest", d.TimeZone)
		}
		loc = l
	}
	return time.ParseInLocation("2006-01-02T15:04:05.9999999", d.DateTime, loc)
}

func wire(t time.Time) dateTimeTimeZone {
	return dateTimeTimeZone{DateTime: t.UTC().Format("2006-01-02T15:04:05.0000000"), TimeZone: "UTC"}
}

// getSchedule answers as the v1.0 calendar: getSchedule action does.
func (s *Server) getSchedule(w http.ResponseWriter, r *http.Request) (int, []string) {
	var req struct {
		Schedules                []string         `json:"schedules"`
		StartTime                dateTimeTimeZone `json:"startTime"`
		EndTime                  dateTimeTimeZone `json:"endTime"`
		AvailabilityViewInterval int              `json:"availabilityViewInterval"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		graphError(w, http.StatusBadRequest, "BadRequest", "graphtest: body: "+err.Error())
		return http.StatusBadRequest, nil
	}
	start, err1 := req.StartTime.time()
	end, err2 := req.EndTime.time()
	interval := req.AvailabilityViewInterval
	if interval == 0 {
		interval = 30
	}
	switch {
	case err1 != nil || err2 != nil:
		graphError(w, http.StatusBadRequest, "ErrorInvalidRequest", fmt.Sprintf("graphtest: times: %v %v", err1, err2))
		return http.StatusBadRequest, req.Schedules
	case len(req.Schedules) == 0 || len(req.Schedules) > 20:
		graphError(w, http.StatusBadRequest, "ErrorInvalidRequest", "The number of schedules must be between 1 and 20.")
		return http.StatusBadRequest, req.Schedules
	case !end.After(start) || end.Sub(start) >= 62*24*time.Hour:
		graphError(w, http.StatusBadRequest, "ErrorInvalidTimeRange", "The time range must be less than 62 days.")
		return http.StatusBadRequest, req.Schedules
	case interval < 5 || interval > 1440:
		graphError(w, http.StatusBadRequest, "ErrorInvalidRequest", "availabilityViewInterval must be between 5 and 1440.")
		return http.StatusBadRequest, req.Schedules
	}
	if prefer := r.Header.Get("Prefer"); prefer != "" && !strings.Contains(prefer, `outlook.timezone="UTC"`) {
		graphError(w, http.StatusBadRequest, "ErrorInvalidRequest", "graphtest answers in UTC only; Prefer was "+prefer)
		return http.StatusBadRequest, req.Schedules
	}
	var value []map[string]any
	s.mu.Lock()
	for _, id := range req.Schedules {
		mb, ok := s.mailboxes[strings.ToLower(id)]
		switch {
		case !ok:
			value = append(value, map[string]any{"scheduleId": id, "availabilityView": "",
				"error": map[string]any{"message": "The specified email address is not valid", "responseCode": "ErrorMailRecipientNotFound"}})
			continue
		case mb.ErrorCode != "":
			value = append(value, map[string]any{"scheduleId": id, "availabilityView": "",
				"error": map[string]any{"message": "graphtest: " + mb.ErrorCode, "responseCode": mb.ErrorCode}})
			continue
		}
		var items []map[string]any
		slots := make([]byte, int(end.Sub(start)/(time.Duration(interval)*time.Minute)))
		for i := range slots {
			slots[i] = '0'
		}
		for _, it := range mb.Items {
			if !it.End.After(start) || !it.Start.Before(end) {
				continue
			}
			item := map[string]any{"isPrivate": it.IsPrivate, "status": it.Status, "start": wire(it.Start), "end": wire(it.End)}
			if !it.IsPrivate {
				item["subject"], item["location"] = it.Subject, it.Location
			}
			items = append(items, item)
			digit := map[string]byte{"tentative": '1', "busy": '2', "oof": '3'}[strings.ToLower(it.Status)]
			for i := range slots {
				slot := start.Add(time.Duration(i*interval) * time.Minute)
				if digit > slots[i] && it.Start.Before(slot.Add(time.Duration(interval)*time.Minute)) && it.End.After(slot) {
					slots[i] = digit
				}
			}
		}
		entry := map[string]any{"scheduleId": id, "availabilityView": string(slots), "scheduleItems": items}
		if mb.TimeZone != "" {
			entry["workingHours"] = map[string]any{"daysOfWeek": []string{"monday", "tuesday", "wednesday", "thursday", "friday"},
				"startTime": "08:00:00.0000000", "endTime": "17:00:00.0000000", "timeZone": map[string]any{"name": mb.TimeZone}}
		}
		value = append(value, entry)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(microsoft.graph.scheduleInformation)",
		"value":          value})
	return http.StatusOK, req.Schedules
}

// getMailTips answers the user: getMailTips action for automaticReplies.
func (s *Server) getMailTips(w http.ResponseWriter, r *http.Request) (int, []string) {
	var req struct {
		EmailAddresses  []string `json:"emailAddresses"`
		MailTipsOptions string   `json:"mailTipsOptions"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		graphError(w, http.StatusBadRequest, "BadRequest", "graphtest: body: "+err.Error())
		return http.StatusBadRequest, nil
	}
	if len(req.EmailAddresses) == 0 || len(req.EmailAddresses) > s.MaxMailTips {
		graphError(w, http.StatusBadRequest, "ErrorInvalidRequest", fmt.Sprintf("between 1 and %d email addresses", s.MaxMailTips))
		return http.StatusBadRequest, req.EmailAddresses
	}
	if !strings.Contains(req.MailTipsOptions, "automaticReplies") {
		graphError(w, http.StatusBadRequest, "ErrorInvalidRequest", "graphtest: only automaticReplies is served, asked "+req.MailTipsOptions)
		return http.StatusBadRequest, req.EmailAddresses
	}
	var value []map[string]any
	s.mu.Lock()
	for _, addr := range req.EmailAddresses {
		mb, ok := s.mailboxes[strings.ToLower(addr)]
		tip := map[string]any{"emailAddress": map[string]any{"name": "", "address": addr}}
		switch {
		case !ok:
			tip["error"] = map[string]any{"code": "UnknownError", "message": "graphtest: no such mailbox"}
		case mb.ErrorCode != "":
			tip["error"] = map[string]any{"code": mb.ErrorCode, "message": "graphtest: " + mb.ErrorCode}
		case mb.AutoReply == nil:
			tip["automaticReplies"] = map[string]any{"message": ""}
		default:
			ar := map[string]any{"message": mb.AutoReply.Message, "messageLanguage": map[string]any{"locale": "en-US", "displayName": "English (United States)"}}
			if !mb.AutoReply.Start.IsZero() {
				ar["scheduledStartTime"], ar["scheduledEndTime"] = wire(mb.AutoReply.Start), wire(mb.AutoReply.End)
			}
			tip["automaticReplies"] = ar
		}
		value = append(value, tip)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(microsoft.graph.mailTips)",
		"value":          value})
	return http.StatusOK, req.EmailAddresses
}

// batch answers JSON batching (POST /$batch) for the requests the gateway
// batches: GET users/{id}/mailboxSettings.
func (s *Server) batch(w http.ResponseWriter, r *http.Request) (int, []string) {
	var req struct {
		Requests []struct {
			ID      string            `json:"id"`
			Method  string            `json:"method"`
			URL     string            `json:"url"`
			Headers map[string]string `json:"headers"`
		} `json:"requests"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		graphError(w, http.StatusBadRequest, "BadRequest", "graphtest: body: "+err.Error())
		return http.StatusBadRequest, nil
	}
	if len(req.Requests) == 0 || len(req.Requests) > 20 {
		graphError(w, http.StatusBadRequest, "BadRequest", "A batch must have between 1 and 20 requests.")
		return http.StatusBadRequest, nil
	}
	var asked []string
	var responses []map[string]any
	seen := map[string]bool{}
	for _, in := range req.Requests {
		if seen[in.ID] {
			graphError(w, http.StatusBadRequest, "BadRequest", "Request id "+in.ID+" is used twice.")
			return http.StatusBadRequest, asked
		}
		seen[in.ID] = true
		u, err := url.Parse(in.URL)
		parts := strings.Split(strings.Trim(u.Path, "/"), "/")
		item := map[string]any{"id": in.ID, "headers": map[string]string{"Content-Type": "application/json"}}
		if err != nil || in.Method != "GET" || len(parts) != 3 || parts[0] != "users" || parts[2] != "mailboxSettings" {
			item["status"], item["body"] = 400, errorBody("BadRequest", "graphtest: unsupported batch request "+in.Method+" "+in.URL)
			responses = append(responses, item)
			continue
		}
		id, _ := url.PathUnescape(parts[1])
		asked = append(asked, id)
		s.mu.Lock()
		var f *fault
		if len(s.itemFaults) > 0 {
			f = &s.itemFaults[0]
			s.itemFaults = s.itemFaults[1:]
		}
		mb, ok := s.mailboxes[strings.ToLower(id)]
		var settings map[string]any
		if ok && mb.ErrorCode == "" {
			settings = mailboxSettings(mb)
		}
		s.mu.Unlock()
		switch {
		case f != nil:
			item["status"], item["body"] = f.status, errorBody("TooManyRequests", "graphtest: injected fault")
			if f.retryAfter != "" {
				item["headers"] = map[string]string{"Content-Type": "application/json", "Retry-After": f.retryAfter}
			}
		case !ok:
			item["status"], item["body"] = 404, errorBody("ErrorInvalidUser", "The requested user '"+id+"' is invalid.")
		case mb.ErrorCode != "":
			item["status"], item["body"] = 403, errorBody(mb.ErrorCode, "graphtest: "+mb.ErrorCode)
		default:
			item["status"], item["body"] = 200, settings
		}
		responses = append(responses, item)
	}
	// Graph may answer in any order.
	for i, j := 0, len(responses)-1; i < j; i, j = i+1, j-1 {
		responses[i], responses[j] = responses[j], responses[i]
	}
	writeJSON(w, http.StatusOK, map[string]any{"responses": responses})
	return http.StatusOK, asked
}

func errorBody(code, msg string) map[string]any {
	return map[string]any{"error": map[string]any{"code": code, "message": msg}}
}

// mailboxSettings is a mailbox's settings as GET mailboxSettings returns
// them (automaticRepliesSetting and timeZone).
func mailboxSettings(mb *Mailbox) map[string]any {
	ar := map[string]any{"status": "disabled", "externalAudience": "all", "internalReplyMessage": "", "externalReplyMessage": "",
		"scheduledStartDateTime": wire(time.Now()), "scheduledEndDateTime": wire(time.Now().Add(24 * time.Hour))}
	if a := mb.AutoReply; a != nil {
		ar["internalReplyMessage"], ar["externalReplyMessage"] = a.Message, a.Message
		if a.Start.IsZero() {
			ar["status"] = "alwaysEnabled"
		} else {
			ar["status"], ar["scheduledStartDateTime"], ar["scheduledEndDateTime"] = "scheduled", wire(a.Start), wire(a.End)
		}
	}
	tz := mb.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	return map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('x')/mailboxSettings",
		"timeZone": tz, "automaticRepliesSetting": ar}
}
