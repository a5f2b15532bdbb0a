package capi

import "strings"

// Info describes the loaded library, for `blip2chat doctor`.
type Info struct {
	Version     string   // llama_version(), e.g. "0.4.0-dev"
	GGMLVersion string   // ggml_version() and, when known, "(commit ...)"
	Location    Location // where the library was found and by which rule
	SystemInfo  string   // llama_print_system_info(): CPU features ggml was built for and uses
	Devices     []Device // the compute devices the backends registered
}

// Device is one ggml backend device, e.g. {"CPU", "AMD EPYC ..."}.
type Device struct{ Name, Description string }

// Info reports the library's version, location, CPU features and devices.
func (l *Library) Info() Info {
	in := Info{
		Version:     l.version,
		GGMLVersion: l.c.ggml_version(),
		Location:    l.loc,
		SystemInfo:  strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(l.c.llama_print_system_info()), "|")),
	}
	if l.c.ggml_commit != nil {
		in.GGMLVersion += " (commit " + l.c.ggml_commit() + ")"
	}
	n := l.c.ggml_backend_dev_count()
	for i := range n {
		d := l.c.ggml_backend_dev_get(i)
		if d == 0 {
			continue
		}
		in.Devices = append(in.Devices, Device{l.c.ggml_backend_dev_name(d), l.c.ggml_backend_dev_description(d)})
	}
	return in
}
