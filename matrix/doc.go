// Package matrix runs every kernel × payload × check and writes the
// compatibility report. `go test ./matrix/...` is the driver; Run is the
// same thing as an API, and cmd/kmatrix as a command.
package matrix
