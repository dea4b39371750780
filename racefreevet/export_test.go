package racefreevet

// RowVerbs exposes rowVerbs to the tests that compare it with racefree.
var RowVerbs = rowVerbs
