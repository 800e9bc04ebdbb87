package bench

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"batos/internal/command"
	"batos/internal/cycle"
	"batos/internal/image"
	"batos/internal/mind"
	"batos/internal/uvm"
)

// Learn measures how well a mind learns: each mission of a suite is a
// message an object does not understand, sent to a fresh image with the
// mind; the cycle learns the method, the send answers, and the mission's
// checks say whether the method does what was asked.

//go:embed learnsuite.json
var defaultSuite []byte

// Suite is a suite of learning missions.
type Suite struct {
	About    string    `json:"about"`
	Missions []Mission `json:"missions"`
}

// Mission is one thing to learn and how to tell it was learned.
type Mission struct {
	// Name names the mission (and its image file when images are kept).
	Name string `json:"name"`
	// Level is the difficulty: 1 one-liners, 2 state changes, 3 text and
	// loops, 4 refusals, 5 methods that must use what the object
	// inherits.
	Level int `json:"level"`
	// Setup is Starlark evaluated first, in a transaction of its own: it
	// makes the receiver (root.NAME = new(...)).
	Setup string `json:"setup"`
	// Send is the message nothing understands yet.
	Send MissionSend `json:"send"`
	// ExpectError, when set, says the send must fail with a method error
	// whose message contains it (case aside): the mission is a refusal.
	ExpectError string `json:"expect_error,omitempty"`
	// Checks are Starlark expressions evaluated after the send, each in a
	// transaction of its own, with result bound to the send's answer;
	// each must be True.
	Checks []string `json:"checks"`
	// Solution and Tests are a reference answer: a method and plan tests a
	// correct model could write. The suite's own tests replay them.
	Solution string   `json:"solution"`
	Tests    []string `json:"tests"`
}

// MissionSend is a mission's message.
type MissionSend struct {
	Target   string         `json:"target"`
	Selector string         `json:"selector"`
	Args     []any          `json:"args"`
	Kwargs   map[string]any `json:"kwargs,omitempty"`
}

var missionName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// DefaultSuite is the suite batos ships.
func DefaultSuite() (*Suite, error) { return ParseSuite(bytes.NewReader(defaultSuite)) }

// ParseSuite reads a suite as JSON, refusing unknown fields and missions
// that cannot run.
func ParseSuite(r io.Reader) (*Suite, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var s Suite
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("suite: %w", err)
	}
	if len(s.Missions) == 0 {
		return nil, errors.New("suite: no missions")
	}
	seen := map[string]bool{}
	for i, m := range s.Missions {
		where := fmt.Sprintf("suite: mission %d (%s)", i+1, m.Name)
		switch {
		case !missionName.MatchString(m.Name):
			return nil, fmt.Errorf("%s: name must be lower case letters, digits and _", where)
		case seen[m.Name]:
			return nil, fmt.Errorf("%s: the name is used twice", where)
		case m.Send.Target == "" || m.Send.Selector == "":
			return nil, fmt.Errorf("%s: send needs a target and a selector", where)
		case len(m.Checks) == 0 && m.ExpectError == "":
			return nil, fmt.Errorf("%s: no checks: nothing would tell a wrong method from a right one", where)
		}
		seen[m.Name] = true
		if _, err := m.args(); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
	}
	return &s, nil
}

// args converts the send's JSON arguments to image values.
func (m *Mission) args() (command.SendRequest, error) {
	req := command.SendRequest{Target: m.Send.Target, Selector: m.Send.Selector}
	for i, a := range m.Send.Args {
		v, err := image.ValueFromJSON(a)
		if err != nil {
			return req, fmt.Errorf("argument %d: %w", i+1, err)
		}
		req.Args = append(req.Args, v)
	}
	keys := make([]string, 0, len(m.Send.Kwargs))
	for k := range m.Send.Kwargs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, err := image.ValueFromJSON(m.Send.Kwargs[k])
		if err != nil {
			return req, fmt.Errorf("keyword %s: %w", k, err)
		}
		req.Kwargs = append(req.Kwargs, image.Slot{Name: k, Value: v})
	}
	return req, nil
}

// LearnOptions configures RunLearn.
type LearnOptions struct {
	// Suite is the suite to run; nil is DefaultSuite.
	Suite *Suite
	// Only, when set, runs just the missions it names.
	Only []string
	// Mind is the inference server the personas speak through.
	Mind *mind.Server
	// MindOptions configure the mind (its cache directory, logger).
	MindOptions *mind.Options
	// Dir holds the scratch images (a temporary directory inside it,
	// removed afterwards); default the system's.
	Dir string
	// Keep, when set, is where each mission's image is kept, as
	// NAME.db, for batos -image KEEP/NAME.db cycle show.
	Keep string
	// Timeout bounds each mission's send; default 10 minutes.
	Timeout time.Duration
	// Attempts is how many syntheses a cycle gets; default 3.
	Attempts int
	JSON     bool
}

// MissionResult is how one mission went.
type MissionResult struct {
	Name  string `json:"name"`
	Level int    `json:"level"`
	// Outcome is correct, wrong (learned, but a check or the expected
	// refusal failed) or failed (nothing learned: the cycle failed, or
	// the send erred).
	Outcome string `json:"outcome"`
	// Reason says why a mission is not correct.
	Reason           string         `json:"reason,omitempty"`
	Cycles           int            `json:"cycles"`
	Attempts         int            `json:"attempts"`
	ModelCalls       int            `json:"model_calls"`
	PromptTokens     int            `json:"prompt_tokens"`
	CompletionTokens int            `json:"completion_tokens"`
	PromptTokensBy   map[string]int `json:"prompt_tokens_by_persona"`
	Seconds          float64        `json:"seconds"`
	Image            string         `json:"image,omitempty"`
}

// Outcomes of a mission.
const (
	OutcomeCorrect = "correct"
	OutcomeWrong   = "wrong"
	OutcomeFailed  = "failed"
)

// LearnReport is a whole run.
type LearnReport struct {
	Server      string          `json:"server"`
	Model       string          `json:"model"`
	Missions    []MissionResult `json:"missions"`
	Correct     int             `json:"correct"`
	Total       int             `json:"total"`
	SuccessRate float64         `json:"success_rate"`
	// ByLevel is correct/total per level.
	ByLevel map[int][2]int `json:"by_level"`
	// PromptTokensMedian is, per persona, the median prompt tokens of one
	// call.
	PromptTokensMedian map[string]float64 `json:"prompt_tokens_median_per_call"`
	Seconds            float64            `json:"seconds"`
}

// RunLearn runs the suite's missions one after another, each on a fresh
// image with the mind, and reports each and the whole. Progress goes to
// log; the report to stdout (a table, or JSON).
func RunLearn(ctx context.Context, opts LearnOptions, stdout, log io.Writer) (*LearnReport, error) {
	if opts.Mind == nil {
		return nil, errors.New("bench learn: no mind to learn with")
	}
	suite := opts.Suite
	if suite == nil {
		var err error
		if suite, err = DefaultSuite(); err != nil {
			return nil, err
		}
	}
	missions, err := selectMissions(suite, opts.Only)
	if err != nil {
		return nil, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = command.DefaultLearnTimeout
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 3
	}
	dir := opts.Keep
	if dir == "" {
		tmp, err := os.MkdirTemp(opts.Dir, "batos-bench-learn-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// Adapters the personas need are unpacked beside the images.
	mo := mind.Options{}
	if opts.MindOptions != nil {
		mo = *opts.MindOptions
	}
	if mo.CacheDir == "" {
		mo.CacheDir = filepath.Join(dir, "cache")
	}
	opts.MindOptions = &mo
	rep := &LearnReport{Server: opts.Mind.Describe(), Model: opts.Mind.DefaultModel, ByLevel: map[int][2]int{}}
	start := time.Now()
	calls := map[string][]int{}
	for i, m := range missions {
		fmt.Fprintf(log, "bench: learn: %d/%d %s (level %d)\n", i+1, len(missions), m.Name, m.Level)
		res, perCall, err := runMission(ctx, &opts, dir, m)
		if err != nil {
			return nil, fmt.Errorf("mission %s: %w", m.Name, err)
		}
		fmt.Fprintf(log, "bench: learn: %s %s%s\n", m.Name, res.Outcome, reasonText(res.Reason))
		if opts.Keep != "" {
			res.Image = filepath.Join(dir, m.Name+".db")
		}
		for p, ns := range perCall {
			calls[p] = append(calls[p], ns...)
		}
		rep.Missions = append(rep.Missions, res)
		lv := rep.ByLevel[m.Level]
		lv[1]++
		if res.Outcome == OutcomeCorrect {
			rep.Correct++
			lv[0]++
		}
		rep.ByLevel[m.Level] = lv
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	rep.Total = len(missions)
	rep.SuccessRate = float64(rep.Correct) / float64(rep.Total)
	rep.PromptTokensMedian = map[string]float64{}
	for p, ns := range calls {
		rep.PromptTokensMedian[p] = median(ns)
	}
	rep.Seconds = time.Since(start).Seconds()
	if opts.JSON {
		return rep, writeJSON(stdout, rep)
	}
	return rep, writeLearnTable(stdout, rep)
}

func reasonText(r string) string {
	if r == "" {
		return ""
	}
	return ": " + clip(r, 200)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func selectMissions(s *Suite, only []string) ([]*Mission, error) {
	var out []*Mission
	for i := range s.Missions {
		if len(only) == 0 || slices.Contains(only, s.Missions[i].Name) {
			out = append(out, &s.Missions[i])
		}
	}
	for _, name := range only {
		if !slices.ContainsFunc(out, func(m *Mission) bool { return m.Name == name }) {
			return nil, fmt.Errorf("bench learn: the suite has no mission %q", name)
		}
	}
	return out, nil
}

// runMission runs one mission on a fresh image; perCall is, per persona,
// the prompt tokens of each call. An error is about the bench itself (the
// image, the setup), not the mind.
func runMission(ctx context.Context, opts *LearnOptions, dir string, m *Mission) (res MissionResult, perCall map[string][]int, err error) {
	res = MissionResult{Name: m.Name, Level: m.Level, PromptTokensBy: map[string]int{}}
	path := filepath.Join(dir, m.Name+".db")
	// Each mission starts on a fresh image: what a kept image of an
	// earlier run left (its log segments, blobs, cache) goes first.
	old, err := filepath.Glob(path + "*")
	if err != nil {
		return res, nil, err
	}
	for _, p := range old {
		if err := os.RemoveAll(p); err != nil {
			return res, nil, err
		}
	}
	u, _, err := uvm.Open(ctx, path, &uvm.Options{User: "bench", Mind: opts.Mind, MindOptions: opts.MindOptions, Cycle: &cycle.Options{MaxAttempts: opts.Attempts}})
	if err != nil {
		return res, nil, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if cerr := u.Shutdown(sctx); cerr != nil && err == nil {
			err = cerr
		}
	}()
	svc := command.NewLocal(u, "bench")
	if _, err := svc.Eval(ctx, command.EvalRequest{Code: m.Setup}); err != nil {
		return res, nil, fmt.Errorf("setup: %w", err)
	}
	req, err := m.args()
	if err != nil {
		return res, nil, err
	}
	req.Learn = command.Learn{Timeout: opts.Timeout}
	start := time.Now()
	answer, sendErr := svc.Send(ctx, req)
	res.Seconds = time.Since(start).Seconds()
	res.Outcome, res.Reason = judgeSend(m, answer.Repr, sendErr)
	if res.Outcome == "" {
		res.Outcome, res.Reason = OutcomeCorrect, ""
		for _, check := range m.Checks {
			r, err := u.EvalWith(ctx, check, map[string]image.Value{"result": answer.Value}, nil)
			if err != nil || r.Repr != "True" {
				res.Outcome, res.Reason = OutcomeWrong, checkFailure(check, r.Repr, err)
				break
			}
		}
	}
	perCall, err = countCalls(ctx, svc, &res)
	return res, perCall, err
}

// judgeSend judges the send itself: "" lets the checks judge.
func judgeSend(m *Mission, repr string, err error) (outcome, reason string) {
	learning := errors.Is(err, command.ErrLearningFailed) || command.CycleOf(err) > 0
	switch {
	case err != nil && learning:
		return OutcomeFailed, err.Error()
	case m.ExpectError == "" && err != nil:
		return OutcomeFailed, fmt.Sprintf("the send failed (%s): %v", command.KindOf(err), err)
	case m.ExpectError == "":
		return "", ""
	case err == nil:
		return OutcomeWrong, fmt.Sprintf("the send answered %s; the mission wants it refused with an error mentioning %q", clip(repr, 100), m.ExpectError)
	case command.KindOf(err) != command.KindMethodError || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(m.ExpectError)):
		return OutcomeWrong, fmt.Sprintf("the send failed (%s) with %q; the mission wants a method error mentioning %q", command.KindOf(err), clip(err.Error(), 200), m.ExpectError)
	}
	return "", ""
}

func checkFailure(check, repr string, err error) string {
	if err != nil {
		return fmt.Sprintf("check %s: %v", check, err)
	}
	return fmt.Sprintf("check %s is %s", check, clip(repr, 100))
}

// countCalls fills in what the mission's cycles cost, from their records.
func countCalls(ctx context.Context, svc command.Service, res *MissionResult) (map[string][]int, error) {
	views, err := svc.ListCycles(ctx, 0)
	if err != nil {
		return nil, err
	}
	perCall := map[string][]int{}
	res.Cycles = len(views)
	for _, v := range views {
		full, err := svc.ShowCycle(ctx, v.ID)
		if err != nil {
			return nil, err
		}
		res.Attempts += full.Attempt
		res.ModelCalls += full.StepCount
		res.PromptTokens += full.PromptTokens
		res.CompletionTokens += full.CompletionTokens
		for _, s := range full.Steps {
			res.PromptTokensBy[s.Persona] += s.PromptTokens
			perCall[s.Persona] = append(perCall[s.Persona], s.PromptTokens)
		}
	}
	return perCall, nil
}

func median(ns []int) float64 {
	if len(ns) == 0 {
		return 0
	}
	s := slices.Clone(ns)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return float64(s[len(s)/2])
	}
	return float64(s[len(s)/2-1]+s[len(s)/2]) / 2
}

func writeLearnTable(w io.Writer, r *LearnReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MISSION\tLEVEL\tOUTCOME\tCYCLES\tATTEMPTS\tCALLS\tTOKENS IN/OUT\tSECONDS\tWHY")
	for _, m := range r.Missions {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\t%d/%d\t%.1f\t%s\n", m.Name, m.Level, m.Outcome, m.Cycles, m.Attempts, m.ModelCalls,
			m.PromptTokens, m.CompletionTokens, m.Seconds, clip(m.Reason, 120))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d of %d missions correct (%.0f%%) with %s, model %s, in %.1f s\n", r.Correct, r.Total, 100*r.SuccessRate, r.Server, r.Model, r.Seconds)
	levels := make([]int, 0, len(r.ByLevel))
	for lv := range r.ByLevel {
		levels = append(levels, lv)
	}
	sort.Ints(levels)
	for _, lv := range levels {
		fmt.Fprintf(w, "  level %d: %d of %d\n", lv, r.ByLevel[lv][0], r.ByLevel[lv][1])
	}
	personas := make([]string, 0, len(r.PromptTokensMedian))
	for p := range r.PromptTokensMedian {
		personas = append(personas, p)
	}
	sort.Strings(personas)
	for _, p := range personas {
		fmt.Fprintf(w, "  %s: median %.0f prompt tokens per call\n", p, r.PromptTokensMedian[p])
	}
	return nil
}
