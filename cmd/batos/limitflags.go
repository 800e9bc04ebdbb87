package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"batos/internal/vm"
)

// limitFlags are batos run's bounds on what method code may take.
type limitFlags struct {
	maxMemory, maxReply sizeFlag
}

func addLimitFlags(fs *flag.FlagSet) *limitFlags {
	l := &limitFlags{
		maxMemory: sizeFlag{n: 1 << 30, min: 64 << 20},
		maxReply:  sizeFlag{n: 16 << 20, min: 64 << 10},
	}
	fs.Var(&l.maxMemory, "max-memory", "the `SIZE` (e.g. 1GiB) the server's heap may reach while method code runs, every execution together: an operation that would take it past fails with a limit error (one execution alone may grow it by at most 512MiB of it)")
	fs.Var(&l.maxReply, "max-reply", "the largest `SIZE` of a send's or eval's result (value, repr and printed output) a reply carries; a bigger result is a limit error, which says whether the changes were saved")
	return l
}

// vm is the VM's options the flags set.
func (l *limitFlags) vm() *vm.Options {
	return &vm.Options{MaxTotalMemory: l.maxMemory.n, MaxResult: int(min(l.maxReply.n, 1<<30))}
}

// sizeFlag is a byte count with an optional binary unit: 512MiB, 1GiB,
// 64KiB (k, M and G mean the same), or plain bytes.
type sizeFlag struct{ n, min uint64 }

func (f *sizeFlag) String() string {
	switch {
	case f.n >= 1<<30 && f.n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", f.n>>30)
	case f.n >= 1<<20 && f.n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", f.n>>20)
	case f.n >= 1<<10 && f.n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", f.n>>10)
	}
	return strconv.FormatUint(f.n, 10)
}

func (f *sizeFlag) Set(s string) error {
	units := []struct {
		suffix string
		shift  uint
	}{{"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"G", 30}, {"M", 20}, {"k", 10}, {"K", 10}, {"B", 0}}
	digits, shift := s, uint(0)
	for _, u := range units {
		if d, ok := strings.CutSuffix(s, u.suffix); ok {
			digits, shift = d, u.shift
			break
		}
	}
	n, err := strconv.ParseUint(strings.TrimSpace(digits), 10, 64)
	if err != nil || n > (1<<62)>>shift {
		return fmt.Errorf("want a size such as 512MiB or 1GiB, got %q", s)
	}
	if n<<shift < f.min {
		return fmt.Errorf("%s is below the smallest allowed, %s", s, (&sizeFlag{n: f.min}).String())
	}
	f.n = n << shift
	return nil
}
