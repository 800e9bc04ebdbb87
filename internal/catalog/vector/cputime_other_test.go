//go:build !unix

package vector

import "time"

// cpuTime is not measured here.
func cpuTime() time.Duration { return 0 }
