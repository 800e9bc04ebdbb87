package catalog

import (
	"path/filepath"
	"strconv"
	"strings"
)

// Kind is the kind of a document, which decides how it is split into units.
type Kind int

const (
	// KindAuto asks Parse to guess the kind from the file name (KindOf).
	KindAuto Kind = iota
	// KindText is plain text: paragraphs of sentences.
	KindText
	// KindMarkdown is Markdown: headings start sections, fenced code
	// blocks stay whole, other text is split into sentences.
	KindMarkdown
	// KindCode is source code, split at top-level definitions.
	KindCode
)

func (k Kind) String() string {
	switch k {
	case KindAuto:
		return "auto"
	case KindText:
		return "text"
	case KindMarkdown:
		return "markdown"
	case KindCode:
		return "code"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// lang is a source language whose top-level definitions the splitter knows.
type lang int

const (
	langOther lang = iota // split at blank lines
	langGo
	langPython // Python and Starlark
)

var codeExts = map[string]lang{
	".go": langGo, ".py": langPython, ".star": langPython, ".bzl": langPython,
	".c": langOther, ".h": langOther, ".cc": langOther, ".cpp": langOther, ".hpp": langOther,
	".rs": langOther, ".java": langOther, ".kt": langOther, ".scala": langOther,
	".js": langOther, ".mjs": langOther, ".ts": langOther, ".tsx": langOther, ".jsx": langOther,
	".rb": langOther, ".php": langOther, ".swift": langOther, ".cs": langOther,
	".sh": langOther, ".bash": langOther, ".lua": langOther, ".pl": langOther,
	".sql": langOther, ".proto": langOther, ".zig": langOther, ".hs": langOther,
}

// KindOf guesses a document's kind from its file name: Markdown for .md and
// .markdown, code for common source extensions (and BUILD files), text
// otherwise.
func KindOf(name string) Kind {
	ext := strings.ToLower(filepath.Ext(name))
	switch {
	case ext == ".md" || ext == ".markdown":
		return KindMarkdown
	case hasKey(codeExts, ext):
		return KindCode
	case isBuildFile(name):
		return KindCode
	}
	return KindText
}

func langOf(name string) lang {
	if isBuildFile(name) {
		return langPython
	}
	return codeExts[strings.ToLower(filepath.Ext(name))]
}

func isBuildFile(name string) bool {
	base := filepath.Base(name)
	return base == "BUILD" || base == "BUILD.bazel" || base == "WORKSPACE"
}

func hasKey(m map[string]lang, k string) bool {
	_, ok := m[k]
	return ok
}

// UnitKind is what a unit of a document is.
type UnitKind int

const (
	// UnitSentence is a sentence of prose.
	UnitSentence UnitKind = iota
	// UnitHeading is a Markdown heading; it starts its section.
	UnitHeading
	// UnitCodeBlock is a fenced Markdown code block, fences included.
	UnitCodeBlock
	// UnitDefinition is a top-level definition in source code with the
	// comments and decorators directly above it.
	UnitDefinition
	// UnitBlock is a run of source lines between blank lines or before the
	// first definition.
	UnitBlock
)

func (k UnitKind) String() string {
	switch k {
	case UnitSentence:
		return "sentence"
	case UnitHeading:
		return "heading"
	case UnitCodeBlock:
		return "code block"
	case UnitDefinition:
		return "definition"
	case UnitBlock:
		return "block"
	}
	return "UnitKind(" + strconv.Itoa(int(k)) + ")"
}
