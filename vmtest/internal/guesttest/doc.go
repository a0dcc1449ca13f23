// Package guesttest holds go tests that vmtest's own tests build with
// BuildTestBinary and run inside guests: they check the guest the init
// sets up, and fail, skip and crash on purpose so that ParseGoTest is
// tested on real output. Outside a guest every test skips.
package guesttest
