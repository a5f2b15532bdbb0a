package capi

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/blip2chat/blip2chat/engine/llamacpp/internal/libfiles"
)

// Info describes the loaded library, for `blip2chat doctor`.
type Info struct {
	Version     string   // llama_version(), e.g. "0.4.0-dev"
	GGMLVersion string   // ggml_version() and, when known, "(commit ...)"
	Location    Location // where the library was found and by which rule
	Check       Check    // what verifying its files found
	Variant     string   // the build: libfiles.CPU, CUDA, Vulkan or Metal
	SystemInfo  string   // llama_print_system_info(): CPU features ggml was built for and uses
	Devices     []Device // the compute devices the backends registered
	// Fallback, for a GPU build that found no usable GPU, says why and that
	// the language model runs on the CPU; "" otherwise.
	Fallback string
}

// Device is one ggml backend device, e.g. {"CPU", "AMD EPYC ...", "CPU"}.
type Device struct {
	Name, Description string
	Type              string // "CPU", "GPU", "iGPU" (shares the host's memory), "accelerator"
	MemFree, MemTotal uint64 // bytes, as the backend reports them (0 when unknown)
}

// GPU reports whether the device offloads layers (a discrete or integrated GPU).
func (d Device) GPU() bool { return d.Type == "GPU" || d.Type == "iGPU" }

func (d Device) String() string {
	s := d.Name + " (" + d.Description
	if d.GPU() && d.MemTotal > 0 {
		s += fmt.Sprintf(", %.1f of %.1f GiB free", float64(d.MemFree)/(1<<30), float64(d.MemTotal)/(1<<30))
	}
	return s + ")"
}

// Info reports the library's version, location, build, CPU features and devices.
func (l *Library) Info() Info {
	in := Info{
		Version:     l.version,
		GGMLVersion: l.c.ggml_version(),
		Location:    l.loc,
		Check:       l.check,
		Variant:     l.loc.Files.Variant,
		SystemInfo:  strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(l.c.llama_print_system_info()), "|")),
		Devices:     l.Devices(),
		Fallback:    l.fallback,
	}
	if l.c.ggml_commit != nil {
		in.GGMLVersion += " (commit " + l.c.ggml_commit() + ")"
	}
	return in
}

// Devices lists the compute devices the backends registered.
func (l *Library) Devices() []Device {
	var out []Device
	for i := range l.c.ggml_backend_dev_count() {
		d := l.c.ggml_backend_dev_get(i)
		if d == 0 {
			continue
		}
		dev := Device{Name: l.c.ggml_backend_dev_name(d), Description: l.c.ggml_backend_dev_description(d)}
		switch l.c.ggml_backend_dev_type(d) {
		case 0:
			dev.Type = "CPU"
		case 1:
			dev.Type = "GPU"
		case 2:
			dev.Type = "iGPU"
		default:
			dev.Type = "accelerator"
		}
		if dev.GPU() {
			var free, total uintptr
			l.c.ggml_backend_dev_memory(d, &free, &total)
			dev.MemFree, dev.MemTotal = uint64(free), uint64(total)
		}
		out = append(out, dev)
	}
	return out
}

// HasGPU reports whether a device can take offloaded layers.
func (l *Library) HasGPU() bool {
	for _, d := range l.Devices() {
		if d.GPU() {
			return true
		}
	}
	return false
}

// Fallback is Info.Fallback: why a GPU build runs on the CPU, or "".
func (l *Library) Fallback() string { return l.fallback }

// GPUBuilds lists the GPU builds of the library packaged for a system.
func GPUBuilds(goos, goarch string) []string {
	var out []string
	for _, p := range libfiles.Packages {
		if p.GOOS == goos && p.GOARCH == goarch && p.Variant != libfiles.CPU {
			out = append(out, p.Variant)
		}
	}
	return out
}

// GPUName is how the build's GPU interface is called ("" for the CPU build).
func GPUName(variant string) string {
	switch variant {
	case libfiles.CUDA:
		return "CUDA"
	case libfiles.Vulkan:
		return "Vulkan"
	case libfiles.Metal:
		return "Metal"
	}
	return ""
}

// gpuFallback explains, for a GPU build with no GPU device, why its GPU
// backend gave none: ggml loads backends silently, so the reason is found
// here. Either the backend started and found no device (no GPU, or no
// driver), or its module did not load (its runtime libraries are missing),
// in which case loading it again gives the loader's message.
func (l *Library) gpuFallback(files libfiles.Files) string {
	api := GPUName(files.Variant)
	if api == "" || l.HasGPU() {
		return ""
	}
	regName := api
	if files.Variant == libfiles.Metal {
		regName = "MTL"
	}
	reason := ""
	for i := range l.c.ggml_backend_reg_count() {
		if r := l.c.ggml_backend_reg_get(i); r != 0 && strings.EqualFold(l.c.ggml_backend_reg_name(r), regName) {
			reason = "it found no " + api + " device: no GPU, or no driver"
		}
	}
	if reason == "" && l.loc.Dir != "" && files.Backend != "" {
		path := filepath.Join(l.loc.Dir, files.Backend)
		if _, err := os.Stat(path); err != nil {
			reason = files.Backend + " is missing"
		} else if _, err := dlopenLocal(path); err != nil {
			reason = files.Backend + ": " + oneLine(err)
		} else {
			reason = files.Backend + " loads but did not start"
		}
	}
	if reason == "" {
		reason = "its " + api + " backend did not load"
	}
	return fmt.Sprintf("the %s build of llama.cpp cannot use a GPU here (%s); the language model runs on the CPU", api, reason)
}
