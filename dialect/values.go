package dialect

// FloatLimiter is implemented by engines that cannot store every float64
// as it is: SQLite stores NaN as NULL without complaint, MySQL and MariaDB
// refuse NaN and ±Inf. The root refuses such a value with an error
// matching racefree.ErrInvalidInput before anything is sent, rather than
// let it be altered or fail on the server. Without the interface every
// float is sent as it is.
type FloatLimiter interface {
	// StoresFloat reports whether f, bound as a parameter, is stored in a
	// column and read back unchanged.
	StoresFloat(f float64) bool
}
