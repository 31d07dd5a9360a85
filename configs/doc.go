// Package configs holds example configuration for real deployments: the
// gateway's YAML (Active Directory, OpenLDAP, a partner CSV) and a systemd
// unit. Its test keeps the examples valid as the configuration evolves.
package configs
