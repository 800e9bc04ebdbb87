package cycle

import "fmt"

// State is where a cycle is.
type State int

// The states, in the order a cycle moves through them.
const (
	Idle State = iota
	Decomposing
	Delegating
	Synthesizing
	Validating
	Complete
	Failed
)

var stateNames = [...]string{"IDLE", "DECOMPOSING", "DELEGATING", "SYNTHESIZING", "VALIDATING", "COMPLETE", "FAILED"}

func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return fmt.Sprintf("State(%d)", int(s))
	}
	return stateNames[s]
}

// Terminal reports whether a cycle in s is finished.
func (s State) Terminal() bool { return s == Complete || s == Failed }

// ParseState reads a state's name.
func ParseState(name string) (State, error) {
	for i, n := range stateNames {
		if n == name {
			return State(i), nil
		}
	}
	return 0, fmt.Errorf("cycle: unknown state %q", clip(name, 40))
}
