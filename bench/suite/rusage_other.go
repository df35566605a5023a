//go:build !unix

package main

import "os"

// peakRSSMiB is not known outside Unix.
func peakRSSMiB(*os.ProcessState) float64 { return 0 }
