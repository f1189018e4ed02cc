package handlers

import "strconv"

// duplicateDetail names the first row of a member, 1-based, with its ref
// (the roster file's line when groupctl read one).
func duplicateDetail(j int, ref string) string {
	d := "same member as row " + strconv.Itoa(j+1)
	if ref != "" && len(ref) <= 40 {
		d += " (ref " + ref + ")"
	}
	return d
}
