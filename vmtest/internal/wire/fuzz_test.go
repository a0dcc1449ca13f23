package wire

import (
	"bytes"
	"testing"
)

// FuzzDecode: the event port is outside input (a guest kernel can write
// anything to it). Decode never panics, and whatever it accepts survives
// an Encode/Decode round trip unchanged. Seeds: testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	for _, e := range []*Event{
		{Kind: Hello, Uptime: 1500000000},
		{Kind: Output, Index: 2, FD: 1, Data: []byte("PASS\n")},
		{Kind: Exit, Index: 2, Code: -1, Err: "timeout", Duration: 3e9},
		{Kind: Ready, Warnings: []string{"no debugfs"}},
	} {
		b, err := Encode(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := Decode(line)
		if err != nil {
			return
		}
		b, err := Encode(e)
		if err != nil {
			t.Fatalf("a decoded event does not encode: %v", err)
		}
		e2, err := Decode(b)
		if err != nil {
			t.Fatalf("an encoded event does not decode: %v\n%q", err, b)
		}
		b2, _ := Encode(e2)
		if !bytes.Equal(b, b2) {
			t.Fatalf("round trip changed the event:\n%q\n%q", b, b2)
		}
	})
}
