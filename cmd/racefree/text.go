package main

import (
	"strconv"
	"strings"
)

// joinInts writes ns as decimal numbers separated by sep.
func joinInts(ns []int, sep string) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, sep)
}
