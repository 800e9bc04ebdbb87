package catalog

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

type unitSummary struct {
	Kind    UnitKind
	Text    string
	Section int
}

func summarize(units []Unit) []unitSummary {
	var s []unitSummary
	for _, u := range units {
		s = append(s, unitSummary{u.Kind, u.Text, u.Section})
	}
	return s
}

func TestMarkdown(t *testing.T) {
	src := "Intro by Dr. Smith. It is short.\n\n" +
		"# Install\n\nRun this. Then that.\n\n" +
		"```sh\ngo build. ./...\n\ngo test. ./...\n```\n" +
		"After code.\n\n" +
		"Usage\n-----\nCall it...\n" +
		"~~~\nunclosed. fence\n\n# not a heading"
	doc := parse(t, "README.md", src, KindAuto)
	want := []unitSummary{
		{UnitSentence, "Intro by Dr. Smith.", 0},
		{UnitSentence, "It is short.", 0},
		{UnitHeading, "# Install", 1},
		{UnitSentence, "Run this.", 1},
		{UnitSentence, "Then that.", 1},
		{UnitCodeBlock, "```sh\ngo build. ./...\n\ngo test. ./...\n```", 1},
		{UnitSentence, "After code.", 1},
		{UnitHeading, "Usage", 2},
		{UnitSentence, "Call it...", 2},
		{UnitCodeBlock, "~~~\nunclosed. fence\n\n# not a heading", 2},
	}
	if diff := cmp.Diff(summarize(doc.Units), want); diff != "" {
		t.Errorf("units (-got +want):\n%s", diff)
	}
}

func TestMarkdownChunksKeepSections(t *testing.T) {
	src := "# A\n\nOne. Two.\n\n## B\n\nThree.\n\n## C\n\n```\nx\n```\n"
	doc := parse(t, "a.md", src, KindAuto)
	cs := Group(doc.Units, nil, Bounds{MinTokens: 100, MaxTokens: 1000})
	var got []string
	for _, c := range cs {
		got = append(got, c.Text)
	}
	want := []string{"# A\n\nOne. Two.", "## B\n\nThree.", "## C\n\n```\nx\n```"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("chunks (-got +want):\n%s", diff)
	}
}
