package outcome

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWorst(t *testing.T) {
	assert.Equal(t, Pass, Worst())
	assert.Equal(t, Fail, Worst(Pass, Fail, Skip))
	assert.Equal(t, KernelPanic, Worst(Fail, KernelPanic, Oops))
	assert.Equal(t, InfraError, Worst(KernelPanic, InfraError))
}

func TestParse(t *testing.T) {
	for _, o := range All {
		got, err := Parse(string(o))
		require.NoError(t, err)
		assert.Equal(t, o, got)
	}
	_, err := Parse("explode")
	assert.ErrorContains(t, err, `unknown outcome "explode"`)
	assert.True(t, LoadError.Failed())
	assert.False(t, Skip.Failed())
}

func TestStageFailure(t *testing.T) {
	assert.Equal(t, BuildError, StageBuild.Failure())
	assert.Equal(t, LoadError, StageLoad.Failure())
	assert.Equal(t, AttachError, StageAttach.Failure())
	assert.Equal(t, Fail, StageBehave.Failure())
	assert.Equal(t, Fail, StageUnload.Failure())
	assert.Equal(t, InfraError, StageFetch.Failure())
	assert.Less(t, StageBuild.Rank(), StageLoad.Rank())
	assert.Equal(t, StageBehave.Rank(), Stage("custom").Rank())
	_, err := ParseStage("explode")
	assert.ErrorContains(t, err, `unknown stage "explode"`)
	for _, s := range Stages {
		got, err := ParseStage(string(s))
		require.NoError(t, err)
		assert.Equal(t, s, got)
	}
}
