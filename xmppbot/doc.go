// Package xmppbot is the gateway's voice in chat: one XEP-0114 component
// that
//
//   - publishes calendar presence: it asks the user's server, through the
//     overlay module we ship for Prosody and ejabberd
//     (docs/overlay-protocol.md), to show "dnd · In a meeting until 14:30"
//     in the presence a person's contacts receive, at a bounded rate and
//     keeping only each person's latest state;
//   - learns live presence through XEP-0356 (privileged entity) and hands
//     it to the presence engine, so lookups answer with what people set;
//   - answers over XMPP: a lookup IQ, chat commands and XEP-0050 ad-hoc
//     commands.
//
// The connection is re-established with backoff; after every (re)connect
// the overlays on the server are listed and reconciled with what the
// calendars say now, so nothing stale stays and a server restart loses
// nothing.
package xmppbot
