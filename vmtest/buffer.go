package vmtest

import (
	"fmt"
)

// ring keeps the last size bytes written to it.
type ring struct {
	size  int
	buf   []byte
	pos   int // next write position once full
	full  bool
	total int64
}

func newRing(size int) *ring { return &ring{size: size} }

func (r *ring) Write(p []byte) (int, error) {
	n := len(p)
	r.total += int64(n)
	if r.size <= 0 {
		return n, nil
	}
	if len(p) >= r.size {
		p = p[len(p)-r.size:]
		r.buf = append(r.buf[:0], p...)
		r.pos, r.full = 0, true
		return n, nil
	}
	if !r.full {
		take := min(r.size-len(r.buf), len(p))
		r.buf = append(r.buf, p[:take]...)
		p = p[take:]
		if len(r.buf) == r.size {
			r.full = true
		}
	}
	for len(p) > 0 {
		k := copy(r.buf[r.pos:], p)
		r.pos = (r.pos + k) % r.size
		p = p[k:]
	}
	return n, nil
}

// Bytes returns the kept bytes, oldest first.
func (r *ring) Bytes() []byte {
	out := make([]byte, 0, len(r.buf))
	if !r.full {
		return append(out, r.buf...)
	}
	return append(append(out, r.buf[r.pos:]...), r.buf[:r.pos]...)
}

// Dropped is how many bytes were written but are no longer kept.
func (r *ring) Dropped() int64 { return r.total - int64(len(r.buf)) }

// headTail keeps the first head bytes and the last tail bytes of a stream,
// so a flood costs bounded memory but keeps both how it started and how it
// ended.
type headTail struct {
	head  []byte
	limit int
	tail  *ring
}

func newHeadTail(limit int) *headTail {
	h := limit / 4
	return &headTail{limit: h, tail: newRing(limit - h)}
}

func (b *headTail) Write(p []byte) (int, error) {
	n := len(p)
	if room := b.limit - len(b.head); room > 0 {
		k := min(room, len(p))
		b.head = append(b.head, p[:k]...)
		p = p[k:]
	}
	b.tail.Write(p)
	return n, nil
}

// Bytes returns head and tail, with a line saying what was left out between them.
func (b *headTail) Bytes() []byte {
	out := append([]byte{}, b.head...)
	if d := b.tail.Dropped(); d > 0 {
		out = append(out, gapLine(d)...)
	}
	return append(out, b.tail.Bytes()...)
}

// gapLine marks left-out output, on a line of its own.
func gapLine(n int64) string {
	return fmt.Sprintf("\n[vmtest: %d bytes of output left out here]\n", n)
}
