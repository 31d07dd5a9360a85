//go:build !unix

package ics

import "time"

func cpuTime() time.Duration { return 0 }
