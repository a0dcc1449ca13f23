package kernels

import _ "embed"

//go:embed arm64.yaml
var arm64Catalog []byte

//go:embed arm64.lock
var arm64Lock []byte

// DefaultArm64Catalog is the arm64 catalog shipped with kmatrix
// (kernels/arm64.yaml: bookworm's 6.1 and sid's 7.x cloud-arm64 kernels),
// pinned by the embedded kernels/arm64.lock.
func DefaultArm64Catalog() (*Catalog, error) {
	c, err := ParseCatalog("kernels/arm64.yaml", arm64Catalog)
	if err != nil {
		return nil, err
	}
	c.Path, c.origin = "", "kernels/arm64.yaml"
	c.lock = arm64Lock
	return c, nil
}

// Shipped returns a catalog kmatrix ships, by name: "default" (or ""),
// "series" or "arm64"; ok is false for any other name.
func Shipped(name string) (c *Catalog, ok bool, err error) {
	switch name {
	case "", "default":
		c, err = DefaultCatalog()
	case "series":
		c, err = DefaultSeriesCatalog()
	case "arm64":
		c, err = DefaultArm64Catalog()
	default:
		return nil, false, nil
	}
	return c, true, err
}
