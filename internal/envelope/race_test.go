//go:build race

package envelope

// raceEnabled is set under the race detector, which makes sync.Pool drop
// items at random: a pooled scanner then allocates now and again.
const raceEnabled = true
