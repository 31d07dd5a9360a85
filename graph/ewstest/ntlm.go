package ewstest

// The server side of NTLM (MS-NLMP) as IIS runs it in front of EWS: a
// request without credentials gets 401 with "WWW-Authenticate: Negotiate"
// and "NTLM"; a NEGOTIATE message (type 1) gets 401 with a CHALLENGE
// (type 2: a random server challenge and the target info); an
// AUTHENTICATE message (type 3) is checked by recomputing its NTLMv2
// proof from the configured password, and on success the connection stays
// authenticated, so later requests on it need no header (IIS's
// connection-based NTLM, which the client's Negotiator relies on by first
// trying without credentials).
//
// go-ntlmssp only has the client side, so this is written here from
// MS-NLMP §2.2.1 and §3.3.2, with MD4 (RFC 1320) for the NT hash.

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"
)

var ntlmSignature = []byte("NTLMSSP\x00")

// Negotiate flags (MS-NLMP §2.2.2.5) the challenge sets.
const (
	flagUnicode         = 1 << 0
	flagRequestTarget   = 1 << 2
	flagNTLM            = 1 << 9
	flagAlwaysSign      = 1 << 15
	flagTargetTypeDom   = 1 << 16
	flagExtendedSession = 1 << 19
	flagTargetInfo      = 1 << 23
	flag128             = 1 << 29
	flag56              = 1 << 31
)

// connState is the NTLM state of one TCP connection.
type connState struct {
	challenge []byte
	user      string // set once authenticated
}

// ntlmMessageType checks the signature and returns the message type.
func ntlmMessageType(msg []byte) (uint32, error) {
	if len(msg) < 12 || !bytes.Equal(msg[:8], ntlmSignature) {
		return 0, errors.New("not an NTLMSSP message")
	}
	return binary.LittleEndian.Uint32(msg[8:12]), nil
}

// challengeMessage is a CHALLENGE (type 2) for the fake's domain.
func challengeMessage(challenge []byte, domain, computer string, now time.Time) []byte {
	target := utf16le(domain)
	var info bytes.Buffer
	av := func(id uint16, v []byte) {
		_ = binary.Write(&info, binary.LittleEndian, id)
		_ = binary.Write(&info, binary.LittleEndian, uint16(len(v)))
		info.Write(v)
	}
	av(2, utf16le(domain))                           // MsvAvNbDomainName
	av(1, utf16le(computer))                         // MsvAvNbComputerName
	av(4, utf16le(strings.ToLower(domain)+".local")) // MsvAvDnsDomainName
	av(3, utf16le(strings.ToLower(computer)+"."+strings.ToLower(domain)+".local"))
	ft := make([]byte, 8)
	binary.LittleEndian.PutUint64(ft, uint64(now.UnixNano()/100+116444736000000000))
	av(7, ft)  // MsvAvTimestamp
	av(0, nil) // MsvAvEOL
	const fixed = 48
	var b bytes.Buffer
	b.Write(ntlmSignature)
	le := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	le(uint32(2))
	le(uint16(len(target)))
	le(uint16(len(target)))
	le(uint32(fixed))
	le(uint32(flagUnicode | flagRequestTarget | flagNTLM | flagAlwaysSign | flagTargetTypeDom | flagExtendedSession | flagTargetInfo | flag128 | flag56))
	b.Write(challenge)
	b.Write(make([]byte, 8))
	le(uint16(info.Len()))
	le(uint16(info.Len()))
	le(uint32(fixed + len(target)))
	b.Write(target)
	b.Write(info.Bytes())
	return b.Bytes()
}

// authenticate checks an AUTHENTICATE (type 3) against challenge and the
// account (domain\user, password) and returns the user it names.
func authenticate(msg, challenge []byte, domain, user, password string) (string, error) {
	if len(msg) < 64 {
		return "", errors.New("AUTHENTICATE message too short")
	}
	field := func(off int) ([]byte, error) {
		n := int(binary.LittleEndian.Uint16(msg[off:]))
		at := int(binary.LittleEndian.Uint32(msg[off+4:]))
		if at < 0 || at+n > len(msg) || at+n < at {
			return nil, fmt.Errorf("field at %d runs past the message", off)
		}
		return msg[at : at+n], nil
	}
	nt, err := field(20)
	if err != nil {
		return "", err
	}
	dom, err := field(28)
	if err != nil {
		return "", err
	}
	usr, err := field(36)
	if err != nil {
		return "", err
	}
	flags := binary.LittleEndian.Uint32(msg[60:])
	if flags&flagUnicode == 0 {
		return "", errors.New("only Unicode AUTHENTICATE messages are supported")
	}
	gotDomain, gotUser := fromUTF16le(dom), fromUTF16le(usr)
	if !strings.EqualFold(gotUser, user) || !strings.EqualFold(gotDomain, domain) {
		return "", fmt.Errorf("unknown account %s\\%s", gotDomain, gotUser)
	}
	if len(nt) < 16+28 {
		return "", errors.New("not an NTLMv2 response")
	}
	// NTOWFv2 = HMAC-MD5(MD4(UTF-16LE(password)), UTF-16LE(upper(user) + domain)),
	// computed with the names as the client sent them.
	h := md4Sum(utf16le(password))
	key := hmacMD5(h[:], utf16le(strings.ToUpper(gotUser)+gotDomain))
	proof := hmacMD5(key, challenge, nt[16:])
	if !hmac.Equal(proof, nt[:16]) {
		return "", errors.New("wrong password (NTLMv2 proof does not match)")
	}
	return gotDomain + `\` + gotUser, nil
}

func hmacMD5(key []byte, data ...[]byte) []byte {
	m := hmac.New(md5.New, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(nil)
}

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

func fromUTF16le(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

func newChallenge() []byte {
	c := make([]byte, 8)
	_, _ = rand.Read(c)
	return c
}

// ntlmToken reads "NTLM <base64>" or "Negotiate <base64>".
func ntlmToken(h string) (scheme string, msg []byte, ok bool) {
	scheme, tok, found := strings.Cut(h, " ")
	if !found || scheme != "NTLM" && scheme != "Negotiate" {
		return "", nil, false
	}
	msg, err := base64.StdEncoding.DecodeString(strings.TrimSpace(tok))
	return scheme, msg, err == nil
}

// md4Sum is MD4 (RFC 1320), which NTLM's NT hash needs and the standard
// library does not have.
func md4Sum(msg []byte) [16]byte {
	a, b, c, d := uint32(0x67452301), uint32(0xefcdab89), uint32(0x98badcfe), uint32(0x10325476)
	n := len(msg)
	pad := append(append([]byte{}, msg...), 0x80)
	for len(pad)%64 != 56 {
		pad = append(pad, 0)
	}
	pad = binary.LittleEndian.AppendUint64(pad, uint64(n)*8)
	rotl := func(x uint32, s uint) uint32 { return x<<s | x>>(32-s) }
	var x [16]uint32
	for off := 0; off < len(pad); off += 64 {
		for i := range x {
			x[i] = binary.LittleEndian.Uint32(pad[off+4*i:])
		}
		aa, bb, cc, dd := a, b, c, d
		f := func(x, y, z uint32) uint32 { return x&y | ^x&z }
		g := func(x, y, z uint32) uint32 { return x&y | x&z | y&z }
		h := func(x, y, z uint32) uint32 { return x ^ y ^ z }
		for _, i := range []int{0, 4, 8, 12} {
			a = rotl(a+f(b, c, d)+x[i], 3)
			d = rotl(d+f(a, b, c)+x[i+1], 7)
			c = rotl(c+f(d, a, b)+x[i+2], 11)
			b = rotl(b+f(c, d, a)+x[i+3], 19)
		}
		for _, i := range []int{0, 1, 2, 3} {
			a = rotl(a+g(b, c, d)+x[i]+0x5a827999, 3)
			d = rotl(d+g(a, b, c)+x[i+4]+0x5a827999, 5)
			c = rotl(c+g(d, a, b)+x[i+8]+0x5a827999, 9)
			b = rotl(b+g(c, d, a)+x[i+12]+0x5a827999, 13)
		}
		for _, i := range []int{0, 2, 1, 3} {
			a = rotl(a+h(b, c, d)+x[i]+0x6ed9eba1, 3)
			d = rotl(d+h(a, b, c)+x[i+8]+0x6ed9eba1, 9)
			c = rotl(c+h(d, a, b)+x[i+4]+0x6ed9eba1, 11)
			b = rotl(b+h(c, d, a)+x[i+12]+0x6ed9eba1, 15)
		}
		a, b, c, d = a+aa, b+bb, c+cc, d+dd
	}
	var out [16]byte
	for i, v := range []uint32{a, b, c, d} {
		binary.LittleEndian.PutUint32(out[4*i:], v)
	}
	return out
}
