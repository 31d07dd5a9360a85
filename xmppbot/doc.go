// Package xmppbot is the gateway's XEP-0114 XMPP component: it publishes
// derived presence and learns live presence. It arrives with the XMPP
// issue.
package xmppbot
