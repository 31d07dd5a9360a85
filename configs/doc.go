// Package configs holds example configuration for real deployments: the
// gateway's YAML (Active Directory, OpenLDAP, a partner CSV) and a systemd
// unit. Its test keeps the examples valid as the configuration evolves.
// ProsodyModule embeds the Prosody overlay module for commands that run a
// Prosody of their own ('presencegw demo --xmpp').
package configs
