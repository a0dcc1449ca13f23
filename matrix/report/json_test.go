package report

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJSONRoundTrip(t *testing.T) {
	r := sample(t)
	var b bytes.Buffer
	require.NoError(t, r.WriteJSON(&b))
	back, err := Parse(b.Bytes())
	require.NoError(t, err)
	require.Equal(t, r, back)

	// The canonical form is stable: writing what was read gives the same bytes.
	var b2 bytes.Buffer
	require.NoError(t, back.WriteJSON(&b2))
	require.Equal(t, b.String(), b2.String())
	golden(t, "report.json", b.Bytes())
}

func TestJSONKeepsLogsReadable(t *testing.T) {
	r := sample(t)
	var b bytes.Buffer
	require.NoError(t, r.WriteJSON(&b))
	// A verifier log's "<" and "&" stay as they are in JSON; \u003c would
	// make report.json unreadable to the people grepping it.
	assert.Contains(t, b.String(), "<TASK>")
	assert.NotContains(t, b.String(), `\u003c`)
}

func TestJSONFieldNames(t *testing.T) {
	// The schema's field names, as documented in issue 7 and DESIGN.md.
	r := sample(t)
	var b bytes.Buffer
	require.NoError(t, r.WriteJSON(&b))
	for _, f := range []string{`"schema"`, `"generated_at"`, `"kernels"`, `"name"`, `"release"`, `"version"`,
		`"package"`, `"package_version"`, `"sha256"`, `"compiler"`, `"btf"`, `"cells"`, `"kernel"`, `"payload"`,
		`"check"`, `"outcome"`, `"stage"`, `"duration_ms"`, `"evidence"`, `"message"`, `"log"`, `"facts"`, `"summary"`} {
		assert.Contains(t, b.String(), f+":")
	}
}

func TestReadErrors(t *testing.T) {
	valid, err := os.ReadFile(filepath.Join("testdata", "sample.json"))
	require.NoError(t, err)
	edit := func(old, new string) string {
		require.Contains(t, string(valid), old)
		return strings.Replace(string(valid), old, new, 1)
	}
	for _, c := range []struct {
		name, json string
		is         error
		want       []string
	}{
		{"empty", "  \n", ErrInvalid, []string{"empty", "kmatrix report.json"}},
		{"not json", "<html>", ErrInvalid, []string{"not valid JSON", "line 1, column 1"}},
		{"truncated", string(valid[:200]), ErrInvalid, []string{"ends early"}},
		{"array", "[]", ErrInvalid, []string{"want a JSON object", "array"}},
		{"no schema", `{"kernels": [], "cells": []}`, ErrSchemaVersion, []string{"schema: missing", `"kmatrix.report/v2"`, "is this a kmatrix report.json?"}},
		{"newer schema", edit(`"kmatrix.report/v2"`, `"kmatrix.report/v3"`), ErrSchemaVersion,
			[]string{`"kmatrix.report/v3"`, "does not read", "reads \"kmatrix.report/v2\""}},
		{"foreign schema", edit(`"kmatrix.report/v2"`, `"https://json-schema.org/draft/2020-12/schema"`), ErrSchemaVersion,
			[]string{"not a kmatrix report schema"}},
		{"unknown outcome", edit(`"outcome": "kernel-panic"`, `"outcome": "exploded"`), ErrInvalid,
			[]string{"cells[0].outcome", "cell debian-sid/kmod/TestProcEntry", `"exploded" is not an outcome`, "kernel-panic"}},
		{"missing outcome", edit(`"outcome": "kernel-panic",`, ``), ErrInvalid,
			[]string{"cells[0].outcome", "cell debian-sid/kmod/TestProcEntry", `"" is not an outcome`}},
		{"unknown kernel", edit(`"kernel": "debian-sid"`, `"kernel": "debian-jessie"`), ErrInvalid,
			[]string{"cells[0].kernel", `kernel "debian-jessie" is not in kernels[]`}},
		{"empty check", edit(`"check": "TestProcEntry"`, `"check": ""`), ErrInvalid,
			[]string{"cells[0].check", "cell debian-sid/kmod/?", "empty"}},
		{"wrong type", edit(`"duration_ms": 3050`, `"duration_ms": "3 s"`), ErrInvalid,
			[]string{"cells.duration_ms", "got a JSON string", "want int64", "line "}},
		{"duplicate kernel", edit(`"name": "debian-trixie"`, `"name": "debian-sid"`), ErrInvalid,
			[]string{"kernels[1].name", `kernel "debian-sid" is listed twice`}},
		{"bad shard", edit(`"cells": [`, `"shard": "5/4", "cells": [`), ErrInvalid, []string{"shard", `"5/4"`, "1 ≤ i ≤ n"}},
		{"no time", edit(`"generated_at": "2026-05-04T09:30:00Z",`, ``), ErrInvalid, []string{"generated_at: missing"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "report.json")
			require.NoError(t, os.WriteFile(path, []byte(c.json), 0o644))
			_, err := Read(path)
			require.Error(t, err)
			assert.True(t, errors.Is(err, c.is), "want errors.Is(%v)", c.is)
			assert.Contains(t, err.Error(), path, "the error names the file")
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestReadMissingFile(t *testing.T) {
	_, err := Read(filepath.Join(t.TempDir(), "nope.json"))
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), "nope.json")
}

func TestValidateListsEveryProblemUpToTen(t *testing.T) {
	r := sample(t)
	for i := range r.Cells {
		r.Cells[i].Outcome = "bogus"
	}
	err := r.Validate()
	require.ErrorIs(t, err, ErrInvalid)
	var fe *FieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "cells[0].outcome", fe.Field)
	assert.Equal(t, maxProblems+1, strings.Count(err.Error(), "\n\t"), err.Error())
	assert.Contains(t, err.Error(), "and 15 more problems")
}

// A v1 report (checks "ExecEvents", "Build") reads as v2 ("TestExecEvents",
// "build"), so a diff across the versions sees no change.
func TestReadV1(t *testing.T) {
	v2, err := os.ReadFile("testdata/sample.json")
	require.NoError(t, err)
	v1 := strings.NewReplacer(`"kmatrix.report/v2"`, `"kmatrix.report/v1"`, `"check": "TestExecEvents"`, `"check": "ExecEvents"`,
		`"check": "TestProcEntry"`, `"check": "ProcEntry"`, `"check": "build"`, `"check": "Build"`).Replace(string(v2))
	require.NotEqual(t, string(v2), v1)
	old, err := Parse([]byte(v1))
	require.NoError(t, err)
	cur, err := Parse(v2)
	require.NoError(t, err)
	assert.Equal(t, Schema, old.Schema)
	assert.Equal(t, cur.Cells, old.Cells)
	d := Diff(old, cur)
	assert.False(t, d.Regressed())
	assert.NotEmpty(t, d.Markdown(), "the diff renders")
}
