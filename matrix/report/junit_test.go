package report

import (
	"bytes"
	"encoding/xml"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

func TestJUnitGolden(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, sample(t).WriteJUnit(&b))
	golden(t, "junit.xml", b.Bytes())
}

func TestJUnitStructure(t *testing.T) {
	r := sample(t)
	cell(t, r, "debian-sid/bpf/load").Outcome = outcome.InfraError
	var b bytes.Buffer
	require.NoError(t, r.WriteJUnit(&b))

	// Read it back the way a consumer would, with its own types.
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Errors   int `xml:"errors,attr"`
		Skipped  int `xml:"skipped,attr"`
		Suites   []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Props    []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:"value,attr"`
			} `xml:"properties>property"`
			Cases []struct {
				Classname string `xml:"classname,attr"`
				Name      string `xml:"name,attr"`
				Time      string `xml:"time,attr"`
				Failure   *struct {
					Message string `xml:"message,attr"`
					Type    string `xml:"type,attr"`
					Body    string `xml:",chardata"`
				} `xml:"failure"`
				Error *struct {
					Type string `xml:"type,attr"`
				} `xml:"error"`
				Skipped *struct {
					Message string `xml:"message,attr"`
				} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	require.NoError(t, xml.Unmarshal(b.Bytes(), &doc))
	assert.Equal(t, 25, doc.Tests)
	assert.Equal(t, 5, doc.Failures, "fail, build-error, load-error, splat, kernel-panic")
	assert.Equal(t, 1, doc.Errors, "the infra-error is an <error>, not the payload's failure")
	assert.Equal(t, 1, doc.Skipped)
	require.Len(t, doc.Suites, 4)
	names := []string{}
	for _, s := range doc.Suites {
		names = append(names, s.Name)
	}
	assert.Equal(t, []string{"debian-bullseye", "debian-bookworm", "debian-trixie", "debian-sid"}, names)

	bullseye := doc.Suites[0]
	assert.Equal(t, 5, bullseye.Tests)
	props := map[string]string{}
	for _, p := range bullseye.Props {
		props[p.Name] = p.Value
	}
	assert.Equal(t, "5.10.0-46-cloud-amd64", props["release"])
	assert.Equal(t, "gcc-10", props["compiler"])
	assert.Equal(t, "5.10.262-1", props["package_version"])
	load := bullseye.Cases[0]
	assert.Equal(t, "bpf", load.Classname)
	assert.Equal(t, "load", load.Name)
	assert.Equal(t, "0.184", load.Time)
	require.NotNil(t, load.Failure)
	assert.Equal(t, "load-error", load.Failure.Type)
	assert.Contains(t, load.Failure.Message, "unknown func bpf_loop#181")
	assert.Contains(t, load.Failure.Body, "processed 9 insns")

	tcx := doc.Suites[1].Cases[3]
	assert.Equal(t, "TestTCX", tcx.Name)
	require.NotNil(t, tcx.Skipped)
	assert.Equal(t, "tcx links need Linux 6.6; this kernel is 6.1.192", tcx.Skipped.Message)
	assert.Nil(t, tcx.Failure)

	sidLoad := doc.Suites[3].Cases[0]
	require.NotNil(t, sidLoad.Error)
	assert.Equal(t, "infra-error", sidLoad.Error.Type)
	assert.Nil(t, sidLoad.Failure)
}

func TestJUnitSurvivesControlCharacters(t *testing.T) {
	// Kernel consoles emit bytes XML 1.0 forbids; the file must still parse.
	r := big(1, 1)
	r.Cells[0].Outcome = outcome.Oops
	r.Cells[0].Evidence.Message = "bad \x07 bell ]]> <x>"
	r.Cells[0].Evidence.Log = "\x1b[31mred\x1b[0m \x00\x01\x02 tail ]]> end\uFFFE"
	var b bytes.Buffer
	require.NoError(t, r.WriteJUnit(&b))
	var v struct {
		Suite struct {
			Case struct {
				Failure struct {
					Message string `xml:"message,attr"`
					Body    string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	require.NoError(t, xml.Unmarshal(b.Bytes(), &v), b.String())
	assert.Equal(t, "red  tail ]]> end", v.Suite.Case.Failure.Body)
	assert.Equal(t, "bad bell ]]> <x>", v.Suite.Case.Failure.Message)
}
