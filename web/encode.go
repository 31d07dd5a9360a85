package web

import (
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// The presence answers are the hot path of the API: they are written by
// hand here rather than through encoding/json's reflection. The output is
// byte for byte what json.Encoder (HTML escaping on) writes for the same
// values, which TestAppendPresenceMatchesEncodingJSON and its fuzz test
// check.

// bufPool holds answer buffers; a buffer that grew past 64 KiB (a large
// batch) is dropped rather than kept.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > 64<<10 {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// errBadTime is returned for a time encoding/json cannot write either (a
// year outside 0–9999).
type errBadTime struct{ err error }

func (e errBadTime) Error() string { return e.err.Error() }

// appendPresence appends p as encoding/json writes it (no newline).
func appendPresence(b []byte, p *presenceJSON) ([]byte, error) {
	var err error
	b = append(b, `{"email":`...)
	b = appendString(b, p.Email)
	if p.JID != "" {
		b = append(b, `,"jid":`...)
		b = appendString(b, p.JID)
	}
	if p.Name != "" {
		b = append(b, `,"name":`...)
		b = appendString(b, p.Name)
	}
	b = append(b, `,"state":`...)
	b = appendString(b, string(p.State))
	if p.Status != "" {
		b = append(b, `,"status":`...)
		b = appendString(b, p.Status)
	}
	if p.Source != "" {
		b = append(b, `,"source":`...)
		b = appendString(b, string(p.Source))
	}
	if p.Until != nil {
		b = append(b, `,"until":`...)
		if b, err = appendTime(b, *p.Until); err != nil {
			return b, err
		}
	}
	if p.Updated != nil {
		b = append(b, `,"updated":`...)
		if b, err = appendTime(b, *p.Updated); err != nil {
			return b, err
		}
	}
	if p.Stale {
		b = append(b, `,"stale":true`...)
	}
	if c := p.Calendar; c != nil {
		b = append(b, `,"calendar":{"state":`...)
		b = appendString(b, string(c.State))
		if c.Status != "" {
			b = append(b, `,"status":`...)
			b = appendString(b, c.Status)
		}
		if c.Until != nil {
			b = append(b, `,"until":`...)
			if b, err = appendTime(b, *c.Until); err != nil {
				return b, err
			}
		}
		if c.Tentative {
			b = append(b, `,"tentative":true`...)
		}
		if c.WorkingElsewhere {
			b = append(b, `,"working_elsewhere":true`...)
		}
		if c.Subject != "" {
			b = append(b, `,"subject":`...)
			b = appendString(b, c.Subject)
		}
		if c.Location != "" {
			b = append(b, `,"location":`...)
			b = appendString(b, c.Location)
		}
		b = append(b, '}')
	}
	if c := p.Chat; c != nil {
		b = append(b, `,"chat":{"online":`...)
		b = strconv.AppendBool(b, c.Online)
		if len(c.Resources) > 0 {
			b = append(b, `,"resources":[`...)
			for i, r := range c.Resources {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"name":`...)
				b = appendString(b, r.Name)
				if r.Show != "" {
					b = append(b, `,"show":`...)
					b = appendString(b, r.Show)
				}
				if r.Status != "" {
					b = append(b, `,"status":`...)
					b = appendString(b, r.Status)
				}
				b = append(b, `,"priority":`...)
				b = strconv.AppendInt(b, int64(r.Priority), 10)
				b = append(b, '}')
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	if e := p.Error; e != nil {
		b = append(b, `,"error":`...)
		b = appendAPIError(b, e)
	}
	return append(b, '}'), nil
}

func appendAPIError(b []byte, e *apiError) []byte {
	b = append(b, `{"code":`...)
	b = appendString(b, e.Code)
	b = append(b, `,"message":`...)
	b = appendString(b, e.Message)
	return append(b, '}')
}

// appendTime is time.Time's MarshalJSON (RFC 3339 with nanoseconds).
func appendTime(b []byte, t time.Time) ([]byte, error) {
	b = append(b, '"')
	b, err := t.AppendText(b)
	if err != nil {
		return b, errBadTime{err}
	}
	return append(b, '"'), nil
}

const hexDigits = "0123456789abcdef"

// appendString quotes s as encoding/json does with HTML escaping: <, >
// and & as \u003c…, control characters escaped, invalid UTF-8 as \ufffd,
// U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
