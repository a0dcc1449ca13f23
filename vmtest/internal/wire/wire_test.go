package wire

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoundTrip(t *testing.T) {
	in := &Event{Kind: Output, Index: 3, FD: 2, Data: []byte("a\nb\r\n\x00\xff KMX1 "), Duration: time.Second}
	line, err := Encode(in)
	require.NoError(t, err)
	assert.Equal(t, 1, bytes.Count(line, []byte("\n")), "one frame is one line whatever its data holds")
	out, err := Decode(line)
	require.NoError(t, err)
	assert.Equal(t, in, out)
}

func TestDecodeSurvivesTheSerialLine(t *testing.T) {
	line, err := Encode(&Event{Kind: Exit, Index: 1, Code: 7, Err: "timeout"})
	require.NoError(t, err)

	// A tty that maps NL to CR-NL, and kernel text that got in front.
	crlf := append(bytes.TrimSuffix(line, []byte("\n")), '\r', '\n')
	noisy := append([]byte("[    1.234] random: crng init done"), crlf...)
	for _, l := range [][]byte{crlf, noisy} {
		e, err := Decode(l)
		require.NoError(t, err, "%q", l)
		assert.Equal(t, 7, e.Code)
		assert.Equal(t, "timeout", e.Err)
	}
}

func TestDecodeRejectsDamage(t *testing.T) {
	line, err := Encode(&Event{Kind: Exit, Code: 1})
	require.NoError(t, err)

	_, err = Decode([]byte("[    2.000] Kernel panic - not syncing"))
	assert.ErrorIs(t, err, ErrNoFrame)

	flipped := bytes.Replace(line, []byte(`"code":1`), []byte(`"code":0`), 1)
	_, err = Decode(flipped)
	assert.ErrorIs(t, err, ErrBadFrame)
	assert.ErrorContains(t, err, "checksum")

	cut := line[:len(line)/2] // a panic mid-frame
	_, err = Decode(cut)
	assert.ErrorIs(t, err, ErrBadFrame)
}
