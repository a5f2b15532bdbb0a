package app

import "github.com/blip2chat/blip2chat/engine/vision"

// What the tests outside the package (package app_test, which may import
// app/apptest) reach inside the app for.

// VisionOf is the vision model of the app's real engine (tests hold its
// layers), nil when the engine is not the real one.
func VisionOf(a *App) *vision.Model {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, ok := a.eng.(*realEngine); ok {
		return e.m.Vision
	}
	return nil
}

// Closing is closed when Close starts stopping the app's work.
func Closing(a *App) <-chan struct{} { return a.root.Done() }
