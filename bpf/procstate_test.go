package bpf

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestProcStateLetter(t *testing.T) {
	for _, c := range []struct {
		state uint32
		exit  int32
		want  byte
	}{
		{0x0000, 0, 'R'},
		{0x0001, 0, 'S'},         // TASK_INTERRUPTIBLE
		{0x0002, 0, 'D'},         // TASK_UNINTERRUPTIBLE
		{0x0104, 0, 'T'},         // TASK_STOPPED = TASK_WAKEKILL | __TASK_STOPPED
		{0x0108, 0, 't'},         // TASK_TRACED (5.10)
		{0x0008, 0, 't'},         // TASK_TRACED (6.1+: __TASK_TRACED alone)
		{0x0080, 0x20, 'Z'},      // TASK_DEAD with EXIT_ZOMBIE
		{0x0080, 0x10, 'X'},      // TASK_DEAD with EXIT_DEAD
		{0x0040, 0, 'P'},         // TASK_PARKED
		{0x0402, 0, 'I'},         // TASK_IDLE = TASK_UNINTERRUPTIBLE | TASK_NOLOAD
		{0x0403, 0, 'I'},         // TASK_IDLE with another bit (6.x: masked compare)
		{0x1000, 0, 'D'},         // TASK_RTLOCK_WAIT
		{0x8001, 0, 'D'},         // TASK_FROZEN over TASK_INTERRUPTIBLE
		{0x0001 | 0x200, 0, 'S'}, // TASK_WAKING is not reported
	} {
		assert.Equal(t, string(c.want), string(ProcStateLetter(c.state, c.exit)), "state %#x exit_state %#x", c.state, c.exit)
	}
}
