package configs

import _ "embed"

// ProsodyModule is prosody/mod_presencegw.lua, the overlay module for
// Prosody 0.12 (prosody/README.md), for commands that run a Prosody of
// their own ('presencegw demo --xmpp' writes it into its plugin
// directory).
//
//go:embed prosody/mod_presencegw.lua
var ProsodyModule []byte
