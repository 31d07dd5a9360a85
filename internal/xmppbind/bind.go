// Package xmppbind binds a chosen resource on a client stream.
// mellium v0.22's own bind feature sends an empty <resource/> (its
// bindPayload writes the JID, not the resource), so the server picks a
// random one; the gateway's calendar sessions, the demo's people and the
// test clients need a resource of their own choosing.
package xmppbind

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
)

// Feature is the resource-binding stream feature binding resource; it
// fails if the server binds another one.
func Feature(resource string) xmpp.StreamFeature {
	f := xmpp.BindResource()
	f.Negotiate = func(ctx context.Context, s *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, error) {
		w := s.TokenWriter()
		defer w.Close()
		req := xmlstream.Wrap(
			xmlstream.Wrap(
				xmlstream.Wrap(xmlstream.Token(xml.CharData(resource)), xml.StartElement{Name: xml.Name{Local: "resource"}}),
				xml.StartElement{Name: xml.Name{Space: "urn:ietf:params:xml:ns:xmpp-bind", Local: "bind"}}),
			xml.StartElement{Name: xml.Name{Local: "iq"}, Attr: []xml.Attr{
				{Name: xml.Name{Local: "type"}, Value: "set"}, {Name: xml.Name{Local: "id"}, Value: "bind1"}}})
		if _, err := xmlstream.Copy(w, req); err != nil {
			return 0, nil, err
		}
		if err := w.Flush(); err != nil {
			return 0, nil, err
		}
		r := s.TokenReader()
		defer r.Close()
		var resp struct {
			Type string `xml:"type,attr"`
			JID  string `xml:"bind>jid"`
		}
		if err := xml.NewTokenDecoder(r).Decode(&resp); err != nil {
			return 0, nil, fmt.Errorf("bind reply: %w", err)
		}
		if resp.Type != "result" {
			return 0, nil, fmt.Errorf("bind %s: %s", resource, resp.Type)
		}
		bound, err := jid.Parse(resp.JID)
		if err != nil {
			return 0, nil, fmt.Errorf("bind reply jid %q: %w", resp.JID, err)
		}
		if bound.Resourcepart() != resource {
			return 0, nil, fmt.Errorf("the server bound %s, not the resource %s", bound, resource)
		}
		s.UpdateAddr(bound)
		return xmpp.Ready, nil, nil
	}
	return f
}
