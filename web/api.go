package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/presencegw/presencegw/rules"
)

// Backend answers presence questions; cmd/presencegw wires the directory
// and the presence engine behind it.
type Backend interface {
	// Lookup answers for one address.
	Lookup(email string) Entry
	// LookupJID answers for one bare JID (any case), as Lookup does for
	// the address of the person the JID is; the Openfire endpoint asks
	// by JID.
	LookupJID(jid string) Entry
	// Changes reports the mailboxes (as in Entry.Mailbox) whose presence
	// changes, until stop is called.
	Changes(buffer int) (changes <-chan string, stop func())
}

// LookupStatus is how a lookup went.
type LookupStatus int

// Lookup outcomes.
const (
	// Found: the address maps to a person.
	Found LookupStatus = iota
	// NotFound: no person has the address (or a conflict, or removed).
	NotFound
	// Invalid: the input is not an e-mail address.
	Invalid
)

// Entry is one person's presence as the backend knows it.
type Entry struct {
	// Email is the normalized address asked for.
	Email  string
	Status LookupStatus
	// Err says why an address is invalid.
	Err  string
	JID  string
	Name string
	// Mailbox identifies the person's presence in Backend.Changes.
	Mailbox  string
	Presence rules.Output
	Chat     rules.Chat
	// Updated is when the presence last changed.
	Updated time.Time
	// Stale is set when the calendar facts are older than they should be
	// (a calendar outage).
	Stale bool
}

// Visibility is how much of a person a caller may see.
type Visibility int

// Visibility levels, each including the ones before.
const (
	// SeeState: the state only.
	SeeState Visibility = iota
	// SeeStatus: plus status text, until, source, name and JID.
	SeeStatus
	// SeeCalendar: plus calendar details (subject, location where the
	// calendar policy allows them) and the chat resources.
	SeeCalendar
)

// ParseVisibility reads "state", "status" or "calendar".
func ParseVisibility(s string) (Visibility, error) {
	switch s {
	case "state":
		return SeeState, nil
	case "status":
		return SeeStatus, nil
	case "calendar":
		return SeeCalendar, nil
	}
	return 0, fmt.Errorf("visibility %q: use state, status or calendar", s)
}

// presenceJSON is the API's answer for one address.
type presenceJSON struct {
	Email    string        `json:"email"`
	JID      string        `json:"jid,omitempty"`
	Name     string        `json:"name,omitempty"`
	State    rules.State   `json:"state"`
	Status   string        `json:"status,omitempty"`
	Source   rules.Source  `json:"source,omitempty"`
	Until    *time.Time    `json:"until,omitempty"`
	Updated  *time.Time    `json:"updated,omitempty"`
	Stale    bool          `json:"stale,omitempty"`
	Calendar *calendarJSON `json:"calendar,omitempty"`
	Chat     *chatJSON     `json:"chat,omitempty"`
	Error    *apiError     `json:"error,omitempty"`
}

type calendarJSON struct {
	State            rules.State `json:"state"`
	Status           string      `json:"status,omitempty"`
	Until            *time.Time  `json:"until,omitempty"`
	Tentative        bool        `json:"tentative,omitempty"`
	WorkingElsewhere bool        `json:"working_elsewhere,omitempty"`
	Subject          string      `json:"subject,omitempty"`
	Location         string      `json:"location,omitempty"`
}

type chatJSON struct {
	Online    bool           `json:"online"`
	Resources []resourceJSON `json:"resources,omitempty"`
}

type resourceJSON struct {
	Name     string `json:"name"`
	Show     string `json:"show,omitempty"`
	Status   string `json:"status,omitempty"`
	Priority int    `json:"priority"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// render shapes an entry for a caller: what it may see, and the same
// answer for "unknown" and "not allowed" to a caller who may not learn
// whether an address exists.
func render(e Entry, c *Caller) (presenceJSON, int) {
	out := presenceJSON{Email: e.Email, State: rules.Unknown}
	switch e.Status {
	case Invalid:
		out.Error = &apiError{Code: "invalid_address", Message: e.Err}
		return out, http.StatusBadRequest
	case NotFound:
		if c.Directory {
			out.Error = &apiError{Code: "not_found", Message: "no person has this address"}
			return out, http.StatusNotFound
		}
		return out, http.StatusOK
	}
	p := e.Presence
	out.State = p.State
	if c.Visibility >= SeeStatus {
		out.JID, out.Name = e.JID, e.Name
		out.Status, out.Source, out.Until = p.Status, p.Source, timePtr(p.Until)
		out.Updated, out.Stale = timePtr(e.Updated), e.Stale
	}
	if c.Visibility >= SeeCalendar {
		cn := p.Calendar
		out.Calendar = &calendarJSON{State: cn.State, Status: cn.Status, Until: timePtr(cn.Until), Tentative: cn.Tentative,
			WorkingElsewhere: cn.WorkingElsewhere, Subject: cn.Subject, Location: cn.Location}
		if e.Chat.Known {
			ch := &chatJSON{Online: len(e.Chat.Resources) > 0}
			for _, r := range e.Chat.Resources {
				ch.Resources = append(ch.Resources, resourceJSON{Name: r.Name, Show: string(r.Show), Status: r.Status, Priority: r.Priority})
			}
			out.Chat = ch
		}
	}
	return out, http.StatusOK
}

// getPresence is GET /api/v1/presence?email=ADDR.
func (s *Server) getPresence(w http.ResponseWriter, r *http.Request, c *Caller) {
	email, n := queryParam(r.URL.RawQuery, "email")
	if n != 1 {
		writeError(w, http.StatusBadRequest, "bad_request", "give exactly one email parameter")
		return
	}
	now := s.answers.now()
	key := answerKey{email: email, visibility: c.Visibility, directory: c.Directory}
	a, version, ok := s.answers.get(key, now)
	if !ok {
		out, code := render(s.backend.Lookup(email), c)
		bp := getBuf()
		defer putBuf(bp)
		b := *bp
		if out.Error != nil {
			b = append(b, `{"error":`...)
			b = appendAPIError(b, out.Error)
			b = append(b, '}')
		} else {
			var err error
			if b, err = appendPresence(b, &out); err != nil {
				// A time encoding/json cannot write either: its answer.
				w.Header()["Cache-Control"] = hdrPrivateNone
				writeJSON(w, code, out)
				return
			}
		}
		*bp = append(b, '\n')
		a = &answer{code: code, body: *bp}
		s.answers.put(key, version, now, code, *bp)
	}
	h := w.Header()
	h["Cache-Control"] = hdrPrivateNone
	h["Content-Type"] = hdrJSON
	w.WriteHeader(a.code)
	_, _ = w.Write(a.body) // the client went away; nothing to tell it
}

// maxFastParams bounds the queries queryParam reads itself; longer ones
// go through url.ParseQuery, which also enforces Go's limit on the number
// of parameters (GODEBUG urlmaxqueryparams).
const maxFastParams = 16

// queryParam returns the first value of the query parameter name and how
// many times it is given, as r.URL.Query()[name] would (pairs with a
// semicolon or a bad escape ignored), without building the map of every
// parameter.
func queryParam(rawQuery, name string) (string, int) {
	if strings.Count(rawQuery, "&") >= maxFastParams {
		q, _ := url.ParseQuery(rawQuery) // partial on error, as URL.Query
		vals := q[name]
		if len(vals) == 0 {
			return "", 0
		}
		return vals[0], len(vals)
	}
	var first string
	n := 0
	for q := rawQuery; q != ""; {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		if kv == "" || strings.Contains(kv, ";") {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		k, err := url.QueryUnescape(k)
		if err != nil || k != name {
			continue
		}
		if v, err = url.QueryUnescape(v); err != nil {
			continue
		}
		if n == 0 {
			first = v
		}
		n++
	}
	return first, n
}

// batchRequest is the body of POST /api/v1/presence/batch.
type batchRequest struct {
	Emails []string `json:"emails"`
}

// postBatch is POST /api/v1/presence/batch: one entry per address, in
// order; a bad address is an error of its entry, not of the request.
func (s *Server) postBatch(w http.ResponseWriter, r *http.Request, c *Caller) {
	var req batchRequest
	if !decodeBody(w, r, int64(s.opts.MaxBatch)*400+1024, true, &req) {
		return
	}
	switch {
	case req.Emails == nil:
		writeError(w, http.StatusBadRequest, "bad_request", `body: "emails" (a list of addresses) is required`)
		return
	case len(req.Emails) > s.opts.MaxBatch:
		writeError(w, http.StatusRequestEntityTooLarge, "too_many", fmt.Sprintf("at most %d addresses per batch, not %d", s.opts.MaxBatch, len(req.Emails)))
		return
	}
	bp := getBuf()
	defer putBuf(bp)
	b := append(*bp, `{"results":[`...)
	for i, e := range req.Emails {
		if i > 0 {
			b = append(b, ',')
		}
		out, _ := render(s.backend.Lookup(e), c)
		var err error
		if b, err = appendPresence(b, &out); err != nil {
			// A time encoding/json cannot write either: its answer.
			s.writeBatchJSON(w, req.Emails, c)
			return
		}
	}
	*bp = append(b, "]}\n"...)
	h := w.Header()
	h["Cache-Control"] = hdrPrivateNone
	h["Content-Type"] = hdrJSON
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(*bp) // the client went away; nothing to tell it
}

// writeBatchJSON is the batch answer through encoding/json.
func (s *Server) writeBatchJSON(w http.ResponseWriter, emails []string, c *Caller) {
	results := make([]presenceJSON, len(emails))
	for i, e := range emails {
		results[i], _ = render(s.backend.Lookup(e), c)
	}
	w.Header()["Cache-Control"] = hdrPrivateNone
	writeJSON(w, http.StatusOK, map[string]any{"results": results})
}

// decodeBody reads one JSON object of at most limit bytes into v, and
// answers the client itself (413 too large, 400 malformed or trailing
// data) when it cannot; strict refuses unknown fields.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, strict bool, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the body is over %d bytes", tooBig.Limit))
			return false
		}
		writeError(w, http.StatusBadRequest, "bad_request", "body: "+jsonError(err))
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, http.StatusBadRequest, "bad_request", "body: one JSON object expected")
		return false
	}
	return true
}

// jsonError words a decoding error without Go type names.
func jsonError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		return fmt.Sprintf("%q must be %s, not %s", typ.Field, typ.Type.Kind(), typ.Value)
	case errors.Is(err, io.EOF):
		return "empty"
	}
	return err.Error()
}
