package cycle

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A model's JSON answer is read out of prose and fences, repaired where
// it has one reading only (and the repair named), and refused with a
// position and a likely cause where it has none.
func TestDecodeAnswer(t *testing.T) {
	want := &method{Source: "def f(self):\n    return 'it’s'\n", Tests: []Test{{Name: "one", Expr: "self.f() == 1"}}}
	tests := []struct {
		name     string
		answer   string
		repaired string // "" for none
	}{
		{"plain", `{"source": "def f(self):\n    return 'it’s'\n", "tests": [{"name": "one", "expr": "self.f() == 1"}]}`, ""},
		{"fenced", "```json\n{\"source\": \"def f(self):\\n    return 'it’s'\\n\", \"tests\": [{\"name\": \"one\", \"expr\": \"self.f() == 1\"}]}\n```", ""},
		{"prose and fence", "Here's the method {as asked}:\n```json\n{\"source\": \"def f(self):\\n    return 'it’s'\\n\", \"tests\": [{\"name\": \"one\", \"expr\": \"self.f() == 1\"}]}\n```\nIt returns 1.",
			"took the JSON object out of the text around it"},
		{"trailing commas", `{"source": "def f(self):\n    return 'it’s'\n", "tests": [{"name": "one", "expr": "self.f() == 1",},],}`, repairComma},
		{"single quotes", `{'source': 'def f(self):\n    return \'it’s\'\n', 'tests': [{'name': 'one', 'expr': 'self.f() == 1'}]}`, repairSingle + "; " + repairEscape},
		{"smart quotes", `{“source”: "def f(self):\n    return 'it’s'\n", “tests”: [{“name”: “one”, “expr”: “self.f() == 1”}]}`, repairSmart},
		{"raw line breaks", "{\"source\": \"def f(self):\n    return 'it’s'\n\", \"tests\": [{\"name\": \"one\", \"expr\": \"self.f() == 1\"}]}", repairControl},
		{"several at once", "Sure!\n{'source': \"def f(self):\n    return 'it’s'\n\", 'tests': [{'name': 'one', 'expr': 'self.f() == 1',}]}",
			"took the JSON object out of the text around it; " + repairSingle + "; " + repairControl + "; " + repairComma},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, repaired, err := decodeAnswer[method](tt.answer)
			if err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("decoded (-got +want):\n%s", diff)
			}
			if repaired != tt.repaired {
				t.Errorf("repaired %q, want %q", repaired, tt.repaired)
			}
		})
	}
}

func TestDecodeAnswerPythonWords(t *testing.T) {
	type flags struct {
		A bool `json:"a"`
		B *int `json:"b"`
		C string
	}
	got, repaired, err := decodeAnswer[flags](`{"a": True, "b": None, "C": "True None"}`)
	if err != nil || !got.A || got.B != nil || got.C != "True None" || repaired != repairPython {
		t.Errorf("got %+v, %q, %v; want a true, b null, C untouched, %q", got, repaired, err, repairPython)
	}
}

// What cannot be read is refused saying where and, where it can be
// told, why.
func TestDecodeAnswerRefused(t *testing.T) {
	tests := []struct {
		name   string
		answer string
		want   []string // in the error
	}{
		{"no JSON", "I think you should greet them.", []string{"no JSON object"}},
		{"null", "null", []string{"no JSON object"}},
		{"cut off", "{\"source\": \"def f(self):\\n\", \"tests\": [{\"name\": \"a\"", []string{"line 1, column 1", "never closed", "cut off"}},
		{"missing comma", "{\"source\": \"x\"\n \"tests\": []}", []string{"line 2, column 2", "missing comma"}},
		{"unescaped quote", `{"source": "say "hi"", "tests": []}`, []string{"line 1, column 18", `not escaped as \"`}},
		{"bare word", `{"source": def, "tests": []}`, []string{"line 1, column 12", "bare word"}},
		{"unknown field", `{"source": "x", "tests": [], "notes": "y"}`, []string{`unknown field "notes"`, "no such field"}},
		{"wrong type", "{\"source\": \"x\",\n \"tests\": \"self.f() == 1\"}", []string{"line 2", `"tests" is a JSON string; the schema wants a list`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := decodeAnswer[method](tt.answer)
			if err == nil {
				t.Fatal("got no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to say %q", err, w)
				}
			}
		})
	}
}

// FuzzDecodeAnswer: any text is read or refused, never a panic; a valid
// JSON object is read with no repair; a repair reads what it wrote.
func FuzzDecodeAnswer(f *testing.F) {
	for _, s := range []string{goodPlan, goodMethod, "```json\n{'a': [1,],}\n```", `{“a”: ‘b’}`, "{\"a\": \"\n\"}", "{", "}{", `{"a": "\'"}`, "{'a': \"x\\\"}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, repaired, err := decodeAnswer[map[string]any](s)
		if err != nil {
			return
		}
		if v == nil {
			t.Fatal("no value and no error")
		}
		if strings.TrimSpace(s) != "" && json.Valid([]byte(strings.TrimSpace(s))) && strings.HasPrefix(strings.TrimSpace(s), "{") && repaired != "" {
			t.Errorf("valid JSON %q read with repairs %q", s, repaired)
		}
		fixed, _ := repairJSON(s)
		if again, _ := repairJSON(fixed); json.Valid([]byte(fixed)) && again != fixed {
			t.Errorf("repairing valid JSON %q changed it to %q", fixed, again)
		}
	})
}
