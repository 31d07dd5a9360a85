package web

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/presencegw/presencegw/rules"
)

// Kopano serves kopano-presence's one endpoint (docs/compat.md §B): GET
// reads, PUT writes, POST writes then reads, all with a JSON body carrying
// an HMAC token. Its weaknesses are fixed (compat.md §C): constant-time
// MAC comparison, tokens from the future refused beyond a small skew, the
// token's user must exist and may only write its own status, "xmpp" is
// computed by the gateway and read-only, input is validated before
// anything is stored.
type Kopano struct {
	secret []byte
	// Expire is how old a token may be. Default 5 minutes.
	expire time.Duration
	// skew is how far in the future a token's time may be.
	skew time.Duration
	// spreedTimeout turns a "spreed" status unavailable without updates.
	spreedTimeout time.Duration
	visibility    Visibility
	now           func() time.Time

	mu     sync.Mutex
	spreed map[string]spreedStatus
}

type spreedStatus struct {
	status  string
	message *string // null when the client sent none, as kopano echoed it
	updated time.Time
}

// KopanoConfig configures the kopano-presence endpoint.
type KopanoConfig struct {
	Secret []byte
	// TokenExpire defaults to 5 minutes, SpreedTimeout to 2 (kopano's
	// server_token_expire and spreed_auto_unavailable).
	TokenExpire, SpreedTimeout time.Duration
	// Visibility is what a token holder sees of others: the xmpp message
	// is the status text only from SeeStatus up. Default SeeState.
	Visibility Visibility
}

// NewKopano makes the endpoint; an empty secret is refused (kopano took
// one and let anybody mint tokens).
func NewKopano(cfg KopanoConfig) (*Kopano, error) {
	if len(cfg.Secret) == 0 {
		return nil, errors.New("kopano: the shared secret is empty")
	}
	k := &Kopano{secret: cfg.Secret, expire: cfg.TokenExpire, skew: time.Minute, spreedTimeout: cfg.SpreedTimeout,
		visibility: cfg.Visibility, now: time.Now, spreed: map[string]spreedStatus{}}
	if k.expire <= 0 {
		k.expire = 5 * time.Minute
	}
	if k.spreedTimeout <= 0 {
		k.spreedTimeout = 2 * time.Minute
	}
	return k, nil
}

// KopanoToken makes a token as kopano's clients do:
// T:U:upper(base64(HMAC-SHA256(secret, "T:U"))).
func KopanoToken(secret []byte, user string, at time.Time) string {
	tu := strconv.FormatInt(at.Unix(), 10) + ":" + user
	return tu + ":" + kopanoMAC(secret, tu)
}

func kopanoMAC(secret []byte, msg string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(msg))
	return strings.ToUpper(base64.StdEncoding.EncodeToString(m.Sum(nil)))
}

// errToken is any token problem; the answer does not say which.
var errToken = errors.New("invalid or expired token")

// verify returns the token's user.
func (k *Kopano) verify(token string) (string, error) {
	parts := strings.Split(token, ":")
	if len(parts) != 3 {
		return "", errToken
	}
	t, err := strconv.ParseInt(strings.TrimSpace(parts[0]), 10, 64)
	if err != nil {
		return "", errToken
	}
	want := kopanoMAC(k.secret, parts[0]+":"+parts[1])
	if subtle.ConstantTimeCompare([]byte(want), []byte(parts[2])) != 1 {
		return "", errToken
	}
	age := k.now().Sub(time.Unix(t, 0))
	if age > k.expire || age < -k.skew {
		return "", errToken
	}
	return parts[1], nil
}

// kopanoRequest is the body of every method.
type kopanoRequest struct {
	AuthenticationToken *string                      `json:"AuthenticationToken"`
	Type                string                       `json:"Type"`
	UserStatus          []map[string]json.RawMessage `json:"UserStatus"`
}

type pluginStatus struct {
	Status  *string `json:"status"`
	Message *string `json:"message"`
}

// kopanoStates are the statuses kopano knows.
var kopanoStates = map[string]bool{"available": true, "busy": true, "away": true, "unavailable": true}

// kopanoState is our presence in kopano's words (its xmpp plugin's map).
func kopanoState(s rules.State) string {
	switch s {
	case rules.Available:
		return "available"
	case rules.Busy, rules.DND:
		return "busy"
	case rules.Away, rules.XA, rules.OOF:
		return "away"
	}
	return "unavailable"
}

// handle serves GET, PUT and POST.
func (k *Kopano) handle(s *Server) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req kopanoRequest
		if !decodeBody(w, r, 1<<20, false, &req) {
			return
		}
		if req.AuthenticationToken == nil {
			writeError(w, http.StatusUnauthorized, "unauthorized", "AuthenticationToken is required")
			return
		}
		user, err := k.verify(*req.AuthenticationToken)
		if err == nil && s.backend.Lookup(user).Status != Found {
			err = errToken // a token for nobody the directory knows
		}
		if err != nil {
			writeError(w, http.StatusUnauthorized, "unauthorized", err.Error())
			return
		}
		if req.UserStatus == nil {
			writeError(w, http.StatusBadRequest, "bad_request", "UserStatus (a list) is required")
			return
		}
		if len(req.UserStatus) > s.opts.MaxBatch {
			writeError(w, http.StatusRequestEntityTooLarge, "too_many", fmt.Sprintf("at most %d users per request", s.opts.MaxBatch))
			return
		}
		type item struct {
			user   string
			spreed *pluginStatus
		}
		items := make([]item, len(req.UserStatus))
		for i, el := range req.UserStatus {
			var id string
			if raw, ok := el["user_id"]; !ok || json.Unmarshal(raw, &id) != nil || id == "" {
				writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("UserStatus[%d].user_id (a string) is required", i))
				return
			}
			items[i].user = id
			for name, raw := range el {
				switch name {
				case "user_id":
				case "spreed":
					if r.Method == http.MethodGet {
						continue // ignored on reads, as kopano did
					}
					var ps pluginStatus
					if err := json.Unmarshal(raw, &ps); err != nil || ps.Status == nil || !kopanoStates[*ps.Status] {
						writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("UserStatus[%d].spreed.status must be available, busy, away or unavailable", i))
						return
					}
					if ps.Message != nil && (utf8.RuneCountInString(*ps.Message) > 1000 || !utf8.ValidString(*ps.Message)) {
						writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("UserStatus[%d].spreed.message must be valid text of at most 1000 characters", i))
						return
					}
					if id != user {
						writeError(w, http.StatusForbidden, "forbidden", "a token may only update its own user's status")
						return
					}
					items[i].spreed = &ps
				case "xmpp":
					if r.Method != http.MethodGet {
						writeError(w, http.StatusForbidden, "forbidden", "the xmpp status is the gateway's and cannot be written")
						return
					}
				default:
					if r.Method != http.MethodGet {
						writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("UserStatus[%d]: unknown plugin %q (spreed is writable, xmpp readable)", i, name))
						return
					}
				}
			}
		}
		// Validated: now store, all of it.
		if r.Method != http.MethodGet {
			now := k.now()
			k.mu.Lock()
			for _, it := range items {
				if it.spreed != nil {
					k.spreed[strings.ToLower(it.user)] = spreedStatus{status: *it.spreed.Status, message: it.spreed.Message, updated: now}
				}
			}
			k.mu.Unlock()
		}
		if r.Method == http.MethodPut {
			w.WriteHeader(http.StatusOK)
			return
		}
		var b bytes.Buffer
		b.WriteString("{\n    \"Type\": \"UserStatus\",\n    \"UserStatus\": [")
		for i, it := range items {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString("\n        {\n")
			if e := s.backend.Lookup(it.user); e.Status == Found {
				// What the policy lets a signed-in colleague see.
				out, _ := render(e, &Caller{Visibility: k.visibility, Directory: true})
				msg := out.Status
				writeKopanoPlugin(&b, "xmpp", kopanoState(e.Presence.State), &msg)
				b.WriteString(",\n")
			}
			if sp, ok := k.spreedOf(it.user); ok {
				writeKopanoPlugin(&b, "spreed", sp.status, sp.message)
				b.WriteString(",\n")
			}
			b.WriteString("            \"user_id\": " + pyString(it.user) + "\n        }")
		}
		if len(items) > 0 {
			b.WriteString("\n    ")
		}
		b.WriteString("]\n}")
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = io.Copy(w, &b)
	}
}

// spreedOf is a user's reported status, unavailable after the timeout.
func (k *Kopano) spreedOf(user string) (spreedStatus, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	sp, ok := k.spreed[strings.ToLower(user)]
	if ok && sp.status != "unavailable" && k.now().Sub(sp.updated) > k.spreedTimeout {
		empty := "" // kopano's timer wrote an empty message
		sp = spreedStatus{status: "unavailable", message: &empty, updated: sp.updated}
		k.spreed[strings.ToLower(user)] = sp
	}
	return sp, ok
}

// writeKopanoPlugin writes one plugin object in Python's json.dumps
// (indent=4) layout, which kopano's clients got.
func writeKopanoPlugin(b *bytes.Buffer, name, status string, message *string) {
	msg := "null"
	if message != nil {
		msg = pyString(*message)
	}
	fmt.Fprintf(b, "            %s: {\n                \"status\": %s,\n                \"message\": %s\n            }",
		pyString(name), pyString(status), msg)
}

// pyString quotes s as Python's json.dumps does by default
// (ensure_ascii: non-ASCII as \uXXXX, lower-case hex, surrogate pairs).
func pyString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || r >= 0x7f && r < 0x10000:
			fmt.Fprintf(&b, `\u%04x`, r)
		case r >= 0x10000:
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
