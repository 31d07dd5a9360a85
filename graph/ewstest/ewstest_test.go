package ewstest

import (
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/go-ntlmssp"
)

func TestMD4(t *testing.T) {
	// RFC 1320 §A.5.
	for in, want := range map[string]string{
		"":    "31d6cfe0d16ae931b73c59d7e0c089c0",
		"a":   "bde52cb31de33e46245e05fbdbd6fb24",
		"abc": "a448017aaf21d8525fc10ae87aa6729d",
		"12345678901234567890123456789012345678901234567890123456789012345678901234567890": "e33b4ddc9c38f2199c3e7b164fcc0536",
	} {
		if got := md4Sum([]byte(in)); hex.EncodeToString(got[:]) != want {
			t.Errorf("md4(%q) = %x, want %s", in, got, want)
		}
	}
	// MS-NLMP §4.2.2.1.2: NTOWFv1("Password").
	if got := md4Sum(utf16le("Password")); hex.EncodeToString(got[:]) != "a4f49c406510bdcab6824ee7c30fd852" {
		t.Errorf("NT hash of Password = %x", got)
	}
}

// TestNTLMAuthenticate checks the fake's verification against
// go-ntlmssp's client messages: the right password passes, a wrong one,
// another user, or another challenge fails.
func TestNTLMAuthenticate(t *testing.T) {
	challenge := newChallenge()
	msg := challengeMessage(challenge, "EXAMPLE", "EXCH01", time.Now())
	auth, err := ntlmssp.NewAuthenticateMessage(msg, `EXAMPLE\svc-presence`, "s3cret!", nil)
	if err != nil {
		t.Fatal(err)
	}
	if typ, err := ntlmMessageType(auth); err != nil || typ != 3 {
		t.Fatalf("type %d, %v", typ, err)
	}
	if user, err := authenticate(auth, challenge, "EXAMPLE", "svc-presence", "s3cret!"); err != nil || user != `EXAMPLE\svc-presence` {
		t.Errorf("authenticate = %q, %v", user, err)
	}
	if _, err := authenticate(auth, challenge, "EXAMPLE", "svc-presence", "other"); err == nil {
		t.Error("a wrong password passed")
	}
	if _, err := authenticate(auth, challenge, "EXAMPLE", "someone", "s3cret!"); err == nil {
		t.Error("another user passed")
	}
	if _, err := authenticate(auth, newChallenge(), "EXAMPLE", "svc-presence", "s3cret!"); err == nil {
		t.Error("an answer to another challenge passed")
	}
	for _, bad := range [][]byte{nil, []byte("NTLMSSP\x00"), append([]byte("NTLMSSP\x00\x03\x00\x00\x00"), make([]byte, 80)...)} {
		if _, err := authenticate(bad, challenge, "EXAMPLE", "svc-presence", "s3cret!"); err == nil {
			t.Errorf("%q passed", bad)
		}
	}
}

// post sends a raw SOAP request with Basic auth and returns status and
// body.
func post(t *testing.T, s *Server, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.EWSURL(), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.SetBasicAuth(s.Username, s.Password)
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const okRequest = `<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">
  <soap:Header><t:RequestServerVersion Version="Exchange2013_SP1"/></soap:Header>
  <soap:Body>
    <m:GetMailTips>
      <m:SendingAs><t:EmailAddress>svc@example.com</t:EmailAddress></m:SendingAs>
      <m:Recipients><t:Mailbox><t:EmailAddress>alice@example.com</t:EmailAddress></t:Mailbox></m:Recipients>
      <m:MailTipsRequested>OutOfOfficeMessage</m:MailTipsRequested>
    </m:GetMailTips>
  </soap:Body>
</soap:Envelope>`

// TestRequestChecks: what the fake refuses, as Exchange would.
func TestRequestChecks(t *testing.T) {
	s := New(t)
	s.Auth = AuthBasic
	s.SetMailbox("alice@example.com", Mailbox{OOF: &OOF{Message: "away"}})
	tests := []struct {
		name, body string
		status     int
		want       string
	}{
		{"documented shape", okRequest, 200, "<t:Message>away</t:Message>"},
		{"https namespaces of some doc revisions", strings.ReplaceAll(okRequest, "http://schemas.microsoft.com", "https://schemas.microsoft.com"), 500, "ErrorSchemaValidation"},
		{"no RequestServerVersion", strings.Replace(okRequest, `<t:RequestServerVersion Version="Exchange2013_SP1"/>`, "", 1), 500, "RequestServerVersion"},
		{"Exchange 2007", strings.Replace(okRequest, "Exchange2013_SP1", "Exchange2007_SP1", 1), 500, "ErrorSchemaValidation"},
		{"impersonation without the right", strings.Replace(okRequest, "<soap:Header>",
			"<soap:Header><t:ExchangeImpersonation><t:ConnectingSID><t:SmtpAddress>boss@example.com</t:SmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>", 1), 500, "ErrorImpersonateUserDenied"},
		{"not XML", "hello", 500, "ErrorSchemaValidation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(t, s, tt.body)
			if status != tt.status || !strings.Contains(body, tt.want) {
				t.Errorf("HTTP %d %s\nwant %d with %q", status, body, tt.status, tt.want)
			}
		})
	}
}
