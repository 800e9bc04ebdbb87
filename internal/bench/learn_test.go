package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"batos/internal/llm"
	"batos/internal/mind"
)

// referenceModel answers every persona from the suite's reference
// answers: BRICK plans the mission's tests, ROBIN writes its solution. It
// stands for a model that gets every mission right on the first try.
type referenceModel struct {
	bySelector map[string]*Mission
}

var (
	brickSelector = regexp.MustCompile(`understands "([A-Za-z_][A-Za-z0-9_]*)"`)
	robinSelector = regexp.MustCompile(`Write the method ([A-Za-z_][A-Za-z0-9_]*)`)
	signatureLine = regexp.MustCompile(`(?m)^def [^\n]*\)`)
)

func (r referenceModel) mission(text string, re *regexp.Regexp) (*Mission, error) {
	if m := re.FindStringSubmatch(text); m != nil {
		if mi, ok := r.bySelector[m[1]]; ok {
			return mi, nil
		}
	}
	// The longest selector the task names as a word.
	var best *Mission
	for sel, mi := range r.bySelector {
		if regexp.MustCompile(`\b`+sel+`\b`).MatchString(text) && (best == nil || len(sel) > len(best.Send.Selector)) {
			best = mi
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no mission's selector in the task")
	}
	return best, nil
}

func (r referenceModel) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	task := req.Messages[len(req.Messages)-1].Content
	var text string
	switch persona := llm.Speaker(req); persona {
	case "BRICK":
		m, err := r.mission(task, brickSelector)
		if err != nil {
			return nil, err
		}
		var tests []map[string]string
		for i, t := range m.Tests {
			tests = append(tests, map[string]string{"name": fmt.Sprintf("reference %d", i+1), "expr": t})
		}
		plan := map[string]any{"intent": "what the mission asks", "selector": m.Send.Selector,
			"signature": signatureLine.FindString(m.Solution),
			"sub_questions": []map[string]string{{"persona": "BABS", "question": "What does the receiver hold?"},
				{"persona": "ALFRED", "question": "What could go wrong?"}},
			"tests": tests, "refuses": nil}
		if m.ExpectError != "" {
			// The call itself must be refused, and a test says so.
			var args []string
			for _, a := range m.Send.Args {
				b, _ := json.Marshal(a)
				args = append(args, string(b))
			}
			plan["refuses"] = m.ExpectError
			plan["tests"] = append(tests, map[string]string{"name": "refused", "expr": fmt.Sprintf("self.%s(%s)", m.Send.Selector, strings.Join(args, ", ")), "fails": m.ExpectError})
		}
		b, _ := json.Marshal(plan)
		text = string(b)
	case "ROBIN":
		m, err := r.mission(task, robinSelector)
		if err != nil {
			return nil, err
		}
		// A plan test that is not one of the reference tests is wrong:
		// the reference model disputes it rather than bend the method.
		var disputes []map[string]string
		for i, want := range m.Tests {
			if !strings.Contains(task, want) {
				disputes = append(disputes, map[string]string{"test": fmt.Sprintf("reference %d", i+1), "reason": "it expects a value the mission does not give"})
			}
		}
		b, _ := json.Marshal(map[string]any{"source": m.Solution, "tests": []any{}, "disputes": disputes})
		text = string(b)
	default:
		text = persona + ": use the receiver's slots."
	}
	prompt := 0
	for _, m := range req.Messages {
		prompt += len(m.Content) / 4
	}
	return &llm.ChatResponse{Text: text, Model: req.Model, FinishReason: "stop",
		Usage: llm.Usage{PromptTokens: prompt, CompletionTokens: len(text) / 4}, Timings: llm.Timings{Latency: time.Millisecond}}, nil
}

func (referenceModel) Embed(ctx context.Context, req *llm.EmbedRequest) (*llm.EmbedResponse, error) {
	return nil, errNoEmbeddings
}

// TestDefaultSuiteIsLearnable: the shipped suite parses, has at least 25
// missions at every level, and with a model answering the reference
// answers (a refusal planned as one) every mission is learned correctly
// through the real cycle, each in one cycle.
func TestDefaultSuiteIsLearnable(t *testing.T) {
	suite, err := DefaultSuite()
	if err != nil {
		t.Fatal(err)
	}
	levels := map[int]int{}
	ref := referenceModel{bySelector: map[string]*Mission{}}
	for i := range suite.Missions {
		m := &suite.Missions[i]
		levels[m.Level]++
		ref.bySelector[m.Send.Selector] = m
	}
	if len(suite.Missions) < 25 || len(levels) < 5 {
		t.Fatalf("the suite has %d missions over levels %v; want at least 25 over 5 levels", len(suite.Missions), levels)
	}
	var out, log bytes.Buffer
	server := &mind.Server{API: mind.APIOpenAI, DefaultModel: "reference", Client: ref}
	rep, err := RunLearn(context.Background(), LearnOptions{Mind: server, Dir: t.TempDir(), Timeout: time.Minute, JSON: true}, &out, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	for _, m := range rep.Missions {
		switch {
		case m.Outcome != OutcomeCorrect:
			t.Errorf("%s: %s: %s", m.Name, m.Outcome, m.Reason)
		case m.Cycles != 1 || m.ModelCalls < 4 || m.PromptTokens == 0:
			t.Errorf("%s: %d cycles, %d calls, %d prompt tokens; want one cycle of at least 4 calls", m.Name, m.Cycles, m.ModelCalls, m.PromptTokens)
		}
	}
	var decoded LearnReport
	if err := json.Unmarshal(out.Bytes(), &decoded); err != nil || decoded.Total != len(suite.Missions) || decoded.Correct != rep.Correct {
		t.Errorf("JSON report: %v, %+v", err, decoded)
	}
	if rep.PromptTokensMedian["BRICK"] == 0 || rep.PromptTokensMedian["ROBIN"] == 0 {
		t.Errorf("median prompt tokens: %v", rep.PromptTokensMedian)
	}
	t.Logf("%d of %d correct; by level %v; median prompt tokens %v", rep.Correct, rep.Total, rep.ByLevel, rep.PromptTokensMedian)
}

func indexOf(s *Suite, name string) int {
	for i, m := range s.Missions {
		if m.Name == name {
			return i
		}
	}
	return -1
}

// TestLearnJudges: a wrong method is "wrong" naming the failed check, a
// method that answers what its plan says must be refused is not
// installed ("failed", saying so), and a mind that cannot plan is
// "failed".
func TestLearnJudges(t *testing.T) {
	suite, err := ParseSuite(strings.NewReader(`{"about": "t", "missions": [
	 {"name": "double", "level": 1, "setup": "root.calc = new(genesis, name = 'calc')",
	  "send": {"target": "calc", "selector": "double", "args": [2]}, "checks": ["result == 4"],
	  "solution": "def double(self, n):\n    return n + 1\n", "tests": ["self.double(1) == 2"]},
	 {"name": "refuse", "level": 4, "setup": "root.w = new(genesis, name = 'w')",
	  "send": {"target": "w", "selector": "take", "args": []}, "expect_error": "empty", "checks": [],
	  "solution": "def take(self):\n    return 1\n", "tests": ["self.take() == 1"]},
	 {"name": "unplanned", "level": 1, "setup": "root.x = new(genesis, name = 'x')",
	  "send": {"target": "x", "selector": "nothing_knows_this", "args": []}, "checks": ["True"],
	  "solution": "", "tests": []}
	]}`))
	if err != nil {
		t.Fatal(err)
	}
	ref := referenceModel{bySelector: map[string]*Mission{}}
	for i := range suite.Missions[:2] {
		ref.bySelector[suite.Missions[i].Send.Selector] = &suite.Missions[i]
	}
	var out, log bytes.Buffer
	server := &mind.Server{API: mind.APIOpenAI, DefaultModel: "reference", Client: ref}
	rep, err := RunLearn(context.Background(), LearnOptions{Suite: suite, Mind: server, Dir: t.TempDir(), Timeout: time.Minute, Attempts: 1}, &out, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	want := map[string][2]string{
		"double":    {OutcomeWrong, "check result == 4 is False"},
		"refuse":    {OutcomeFailed, `must fail, with an error mentioning "empty"`},
		"unplanned": {OutcomeFailed, "nothing_knows_this"},
	}
	for _, m := range rep.Missions {
		if w := want[m.Name]; m.Outcome != w[0] || !strings.Contains(m.Reason, w[1]) {
			t.Errorf("%s: %s %q, want %s mentioning %q", m.Name, m.Outcome, m.Reason, w[0], w[1])
		}
	}
	if rep.Correct != 0 || !strings.Contains(out.String(), "0 of 3 missions correct") {
		t.Errorf("report:\n%s", out.String())
	}
}

// TestParseSuiteRefuses: a suite that cannot run is refused, saying why.
func TestParseSuiteRefuses(t *testing.T) {
	for _, tc := range []struct{ suite, want string }{
		{`{"missions": []}`, "no missions"},
		{`{"missions": [{"name": "a", "send": {"target": "x", "selector": "y"}, "checks": ["True"], "typo": 1}]}`, "unknown field"},
		{`{"missions": [{"name": "A b", "send": {"target": "x", "selector": "y"}, "checks": ["True"]}]}`, "lower case"},
		{`{"missions": [{"name": "a", "send": {"target": "x", "selector": "y"}, "checks": ["True"]}, {"name": "a", "send": {"target": "x", "selector": "y"}, "checks": ["True"]}]}`, "used twice"},
		{`{"missions": [{"name": "a", "send": {"target": "x"}, "checks": ["True"]}]}`, "target and a selector"},
		{`{"missions": [{"name": "a", "send": {"target": "x", "selector": "y"}}]}`, "no checks"},
		{`{"missions": [{"name": "a", "send": {"target": "x", "selector": "y", "args": [1e999]}, "checks": ["True"]}]}`, "argument 1"},
	} {
		if _, err := ParseSuite(strings.NewReader(tc.suite)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error mentioning %q", tc.suite, err, tc.want)
		}
	}
}

// TestLearnKeepStartsFresh: a mission run again into the same -keep
// directory starts on a fresh image, not on the image the last run kept.
func TestLearnKeepStartsFresh(t *testing.T) {
	suite, err := DefaultSuite()
	if err != nil {
		t.Fatal(err)
	}
	ref := referenceModel{bySelector: map[string]*Mission{}}
	for i := range suite.Missions {
		ref.bySelector[suite.Missions[i].Send.Selector] = &suite.Missions[i]
	}
	server := &mind.Server{API: mind.APIOpenAI, DefaultModel: "reference", Client: ref}
	keep := t.TempDir()
	for run := 1; run <= 2; run++ {
		var out, log bytes.Buffer
		rep, err := RunLearn(context.Background(), LearnOptions{Mind: server, Keep: keep, Only: []string{"counter_increment"}, Timeout: time.Minute}, &out, &log)
		if err != nil {
			t.Fatalf("run %d: %v\n%s", run, err, log.String())
		}
		if m := rep.Missions[0]; m.Outcome != OutcomeCorrect || m.Cycles != 1 {
			t.Errorf("run %d: %s with %d cycles (%s), want correct with one", run, m.Outcome, m.Cycles, m.Reason)
		}
	}
}
