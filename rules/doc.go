// Package rules turns calendar facts, live chat presence, manual settings
// and policy into a person's presence. It is pure: no I/O, no clock reads;
// time is a parameter. The engine arrives with the calendar issue.
package rules
