//go:build !amd64 && !arm64

package execchild

// No child for this arch: kmatrix's guests are amd64 or arm64, and their
// tests are built for one of those. Path says so.
var binary []byte

const file = ""
