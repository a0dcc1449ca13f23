package kernels

// Headers exposes the headers packages of a resolution to the external tests.
func (r Resolved) HeadersForTest() []Package { return r.headers() }
