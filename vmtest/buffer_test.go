package vmtest

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRing(t *testing.T) {
	r := newRing(10)
	r.Write([]byte("abc"))
	assert.Equal(t, "abc", string(r.Bytes()))
	r.Write([]byte("defghijkl"))
	assert.Equal(t, "cdefghijkl", string(r.Bytes()))
	r.Write([]byte("mn"))
	assert.Equal(t, "efghijklmn", string(r.Bytes()))
	r.Write([]byte("0123456789ABCDEF"))
	assert.Equal(t, "6789ABCDEF", string(r.Bytes()))
	assert.Equal(t, int64(30-10), r.Dropped())
}

func TestHeadTailFloodIsBounded(t *testing.T) {
	const limit = 4096
	h := newHeadTail(limit)
	var all bytes.Buffer
	for i := 0; i < 200000; i++ { // about 3 MB in small writes
		line := fmt.Sprintf("line %d\n", i)
		all.WriteString(line)
		h.Write([]byte(line))
	}
	assert.LessOrEqual(t, cap(h.head), limit, "memory stays bounded")
	assert.LessOrEqual(t, cap(h.tail.buf), limit)

	out := h.Bytes()
	head, tail := all.Bytes()[:limit/4], all.Bytes()[all.Len()-(limit-limit/4):]
	gap := gapLine(int64(all.Len() - limit))
	assert.Equal(t, string(head)+gap+string(tail), string(out))
}

func TestHeadTailSmallIsVerbatim(t *testing.T) {
	h := newHeadTail(100)
	h.Write([]byte("short output\n"))
	assert.Equal(t, "short output\n", string(h.Bytes()))
}
