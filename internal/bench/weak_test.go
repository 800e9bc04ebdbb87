package bench

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"batos/internal/llm"
	"batos/internal/mind"
)

// weakModel answers as referenceModel, except that each persona's answers
// for a mission make one mistake typical of a small local model: BRICK's
// plan wrapped in prose and a fence, JSON with trailing commas and single
// quotes, tests written as assert statements; ROBIN's method with an
// f-string, a second top-level function, no self, a try/except, sum() or
// an import, or an answer cut off half-way. Like a small model, it keeps
// making the mistake until the feedback it is given names it (the
// mistake's cue); then it answers right. So the success rate measures how
// well the cycle's messages lead a model away from its mistakes.
type weakModel struct {
	referenceModel
	mu    sync.Mutex
	asked map[string]int // persona + mission → answers given
	made  map[string]int // mistake → answers it spoiled
}

// weakMistakes are the mistakes, taken in turn by the missions.
var weakMistakes = []struct {
	persona string
	name    string
	// cue is what the feedback must say for the model to see its mistake.
	cue   *regexp.Regexp
	spoil func(answer string) string
}{
	{"BRICK", "plan in prose around a ```json fence", regexp.MustCompile("(?i)fence|only the json|prose|```"), func(a string) string {
		return "Sure! Here is the plan you asked for:\n\n```json\n" + a + "\n```\n\nLet me know if you need anything else."
	}},
	{"ROBIN", "f-string", regexp.MustCompile(`(?i)f-string`), func(a string) string {
		return strings.Replace(a, `\"\"\"\n`, `\"\"\"\n    label = f\"{self}\"\n`, 1)
	}},
	{"BRICK", "trailing commas and single quotes", regexp.MustCompile(`(?i)trailing comma|single.quot`), func(a string) string {
		a = strings.ReplaceAll(a, `"`, `'`)
		a = strings.Replace(a, "]", ",]", 1)
		return strings.TrimSuffix(a, "}") + ",}"
	}},
	{"ROBIN", "a second top-level function", regexp.MustCompile(`(?i)nest|one function|top-level function`), func(a string) string {
		return strings.Replace(a, `","tests"`, `\ndef helper(x):\n    return x\n","tests"`, 1)
	}},
	{"BRICK", "tests written as assert statements", regexp.MustCompile(`(?i)\bassert\b`), func(a string) string {
		return regexp.MustCompile(`"expr":"`).ReplaceAllString(a, `"expr":"assert `)
	}},
	{"ROBIN", "no self", regexp.MustCompile(`(?i)\bself\b.*(first|parameter)|(first|parameter).*\bself\b`), func(a string) string {
		a = strings.Replace(a, "(self, ", "(", 1)
		return strings.Replace(a, "(self)", "()", 1)
	}},
	{"ROBIN", "try/except", regexp.MustCompile(`(?i)try/except|instead of try|no try|try is not`), func(a string) string {
		return strings.Replace(a, `\"\"\"\n`, `\"\"\"\n    try:\n        pass\n    except Exception:\n        pass\n`, 1)
	}},
	{"ROBIN", "sum()", regexp.MustCompile(`(?i)\bsum\b`), func(a string) string {
		return strings.Replace(a, `\"\"\"\n`, `\"\"\"\n    unused = sum([1, 2])\n`, 1)
	}},
	{"ROBIN", "import", regexp.MustCompile(`(?i)import does not exist|no import|cannot import|import is not|instead of import`), func(a string) string {
		return strings.Replace(a, `\"\"\"\n`, `\"\"\"\n    import math\n`, 1)
	}},
	{"ROBIN", "an answer cut off half-way", regexp.MustCompile(`(?i)cut off|truncat|incomplete|unexpected end|unexpected EOF`), func(a string) string { return a[:len(a)/2] }},
	{"BRICK", "an empty plan", regexp.MustCompile(`(?i)lacks|requires|missing|has no`), func(a string) string { return "{}" }},
	{"ROBIN", "a refusal to answer", regexp.MustCompile(`(?i)json|object`), func(a string) string {
		return "I'm sorry, but I can't help with writing that method."
	}},
	{"BRICK", "a test with a wrong expected value", regexp.MustCompile(`(?i)disputes`), func(a string) string {
		// The first number a test expects is one off; a test expecting
		// no number expects a string with a letter too many.
		if m := regexp.MustCompile(`== [^"]*?(\d+)`).FindStringSubmatchIndex(a); m != nil {
			n, _ := strconv.Atoi(a[m[2]:m[3]])
			return a[:m[2]] + strconv.Itoa(n+1) + a[m[3]:]
		}
		if m := regexp.MustCompile(`== '[^']*()'`).FindStringSubmatchIndex(a); m != nil {
			return a[:m[2]] + "x" + a[m[2]:]
		}
		return a
	}},
	{"ROBIN", "tabs and spaces mixed", regexp.MustCompile(`(?i)\btab`), func(a string) string {
		// The first indented line by a tab, the rest by spaces.
		return strings.Replace(a, `):\n    `, `):\n\t`, 1)
	}},
}

func (w *weakModel) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	res, err := w.referenceModel.Chat(ctx, req)
	if err != nil {
		return nil, err
	}
	persona := llm.Speaker(req)
	task := req.Messages[len(req.Messages)-1].Content
	re := brickSelector
	if persona == "ROBIN" {
		re = robinSelector
	}
	m, err := w.mission(task, re)
	if err != nil || (persona != "BRICK" && persona != "ROBIN") {
		return res, nil
	}
	mistake := weakMistakes[indexOfMission(w.bySelector, m)%len(weakMistakes)]
	w.mu.Lock()
	key := persona + " " + m.Name
	n := w.asked[key]
	w.asked[key]++
	w.mu.Unlock()
	// The first answer makes the mistake; a later one only when the
	// feedback in the task does not name it.
	if mistake.persona == persona && (n == 0 || !mistake.cue.MatchString(feedback(task))) {
		if spoiled := mistake.spoil(res.Text); spoiled != res.Text {
			res.Text = spoiled
			w.mu.Lock()
			w.made[mistake.name]++
			w.mu.Unlock()
		}
	}
	return res, nil
}

// feedback is what a task says of earlier answers: the text after the
// first mention of a refusal or a failure, without the earlier answers it
// quotes (which hold the mistake itself).
func feedback(task string) string {
	i := regexp.MustCompile(`(?i)refused|failed|failure`).FindStringIndex(task)
	if i == nil {
		return ""
	}
	var kept []string
	for _, part := range strings.Split(task[i[0]:], "It was:\n") {
		if j := strings.Index(part, "\n\n"); j >= 0 && len(kept) > 0 {
			part = part[j:] // the quoted answer runs to the next blank line
		} else if len(kept) > 0 {
			part = ""
		}
		kept = append(kept, part)
	}
	return strings.Join(kept, "\n")
}

// indexOfMission orders the missions by name, so each takes a mistake.
func indexOfMission(by map[string]*Mission, m *Mission) int {
	n := 0
	for _, o := range by {
		if o.Name < m.Name {
			n++
		}
	}
	return n
}

// TestWeakModelLearns runs the default suite with weakModel: each
// mission's first answer from BRICK or ROBIN carries one typical small-
// model mistake, repeated until the feedback names it. Every mistake must
// be made (spoil an answer) and every mission still be learned: a message
// that stops naming its mistake, or a repair batos stops making, fails
// here. It reports the success rate and median prompt tokens.
func TestWeakModelLearns(t *testing.T) {
	if testing.Short() {
		t.Skip("the whole suite")
	}
	suite, err := DefaultSuite()
	if err != nil {
		t.Fatal(err)
	}
	weak := &weakModel{referenceModel: referenceModel{bySelector: map[string]*Mission{}}, asked: map[string]int{}, made: map[string]int{}}
	for i := range suite.Missions {
		weak.bySelector[suite.Missions[i].Send.Selector] = &suite.Missions[i]
	}
	var out, log bytes.Buffer
	server := &mind.Server{API: mind.APIOpenAI, DefaultModel: "weak", Client: weak}
	rep, err := RunLearn(context.Background(), LearnOptions{Mind: server, Dir: t.TempDir(), Timeout: time.Minute}, &out, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	var lost []string
	for _, m := range rep.Missions {
		if m.Outcome != OutcomeCorrect {
			mi := suite.Missions[indexOf(suite, m.Name)]
			mistake := weakMistakes[indexOfMission(weak.bySelector, &mi)%len(weakMistakes)]
			lost = append(lost, fmt.Sprintf("%s (%s, %s's %s): %s", m.Name, m.Outcome, mistake.persona, mistake.name, clip(m.Reason, 160)))
			t.Errorf("%s: %s after %s's %s: %s", m.Name, m.Outcome, mistake.persona, mistake.name, m.Reason)
		}
	}
	for _, mistake := range weakMistakes {
		if weak.made[mistake.name] == 0 {
			t.Errorf("%s's %s spoiled no answer: it tests nothing", mistake.persona, mistake.name)
		}
	}
	t.Logf("weak model: %d of %d correct (%.0f%%); median prompt tokens %v\n%s", rep.Correct, rep.Total, 100*rep.SuccessRate, rep.PromptTokensMedian, strings.Join(lost, "\n"))
}
