package kmod

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRecords(t *testing.T) {
	recs, err := parseRecords("7 120 1 kmod.test\n8 121 1 a b c\n")
	require.NoError(t, err)
	assert.Equal(t, []Record{{7, 120, 1, "kmod.test"}, {8, 121, 1, "a b c"}}, recs)

	recs, err = parseRecords("")
	require.NoError(t, err)
	assert.Empty(t, recs)

	_, err = parseRecords("7 120 1 ok\n8 x 1 bad\n")
	assert.ErrorIs(t, err, ErrDevice)
	assert.ErrorContains(t, err, `record 2 "8 x 1 bad"`)
	_, err = parseRecords("7 120\n")
	assert.ErrorContains(t, err, `want "<seq> <pid> <parent> <comm>"`)
}

func TestParseTaskState(t *testing.T) {
	st, err := parseTaskState("42 258 T\n")
	require.NoError(t, err)
	assert.Equal(t, TaskState{Pid: 42, Raw: 258, Char: 'T'}, st)
	for _, bad := range []string{"", "42 1", "42 x S", "42 1 SS"} {
		_, err := parseTaskState(bad)
		assert.ErrorIs(t, err, ErrDevice, "%q", bad)
		assert.ErrorContains(t, err, "want \"<pid> <raw> <char>\"")
	}
}
