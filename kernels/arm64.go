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

//go:embed series-arm64.yaml
var seriesArm64Catalog []byte

//go:embed series-arm64.lock
var seriesArm64Lock []byte

// DefaultSeriesArm64Catalog is series.yaml's arm64 twin: the newest signed
// cloud-arm64 kernel of each upstream series (kernels/series-arm64.yaml,
// written by kmatrix kernels --series --arch arm64), pinned by the
// embedded kernels/series-arm64.lock.
func DefaultSeriesArm64Catalog() (*Catalog, error) {
	c, err := ParseCatalog("kernels/series-arm64.yaml", seriesArm64Catalog)
	if err != nil {
		return nil, err
	}
	c.Path, c.origin = "", "kernels/series-arm64.yaml"
	c.lock = seriesArm64Lock
	return c, nil
}

// ShippedNames are the names of the catalogs kmatrix ships (see Shipped).
var ShippedNames = []string{"default", "series", "arm64", "series-arm64"}

// Shipped returns a catalog kmatrix ships, by name: "default" (or ""),
// "series", "arm64" or "series-arm64"; ok is false for any other name.
func Shipped(name string) (c *Catalog, ok bool, err error) {
	switch name {
	case "", "default":
		c, err = DefaultCatalog()
	case "series":
		c, err = DefaultSeriesCatalog()
	case "arm64":
		c, err = DefaultArm64Catalog()
	case "series-arm64":
		c, err = DefaultSeriesArm64Catalog()
	default:
		return nil, false, nil
	}
	return c, true, err
}
