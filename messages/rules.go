package messages

import "strings"

// RulesDiff is the difference between two rule lists, rules being paired by
// title (trimmed, case-sensitive).
type RulesDiff struct {
	// Added lists rules of the new list whose title is not in the old one.
	Added []Rule `json:"added,omitempty"`
	// Removed lists rules of the old list whose title is not in the new one.
	Removed []Rule `json:"removed,omitempty"`
	// Changed lists rules whose description differs.
	Changed []RuleChange `json:"changed,omitempty"`
	// Unchanged counts rules present in both with the same description.
	Unchanged int `json:"unchanged"`
}

// RuleChange is a rule whose description changed.
type RuleChange struct {
	// Title is the rule's title.
	Title string `json:"title"`
	// From is the old description.
	From string `json:"from"`
	// To is the new description.
	To string `json:"to"`
}

// Empty reports whether the diff changes nothing.
func (d RulesDiff) Empty() bool {
	return len(d.Added) == 0 && len(d.Removed) == 0 && len(d.Changed) == 0
}

// DiffRules compares old and new rule lists by title. Added and Changed
// follow the order of new, Removed the order of old. When a title repeats in
// a list, its first occurrence counts and later ones are ignored. Order
// changes alone are not differences.
func DiffRules(old, new []Rule) RulesDiff {
	var d RulesDiff
	oldBy := make(map[string]Rule, len(old))
	for _, r := range old {
		k := strings.TrimSpace(r.Title)
		if _, dup := oldBy[k]; !dup {
			oldBy[k] = r
		}
	}
	seen := make(map[string]bool, len(new))
	for _, r := range new {
		k := strings.TrimSpace(r.Title)
		if seen[k] {
			continue
		}
		seen[k] = true
		o, ok := oldBy[k]
		switch {
		case !ok:
			d.Added = append(d.Added, r)
		case o.Description != r.Description:
			d.Changed = append(d.Changed, RuleChange{Title: k, From: o.Description, To: r.Description})
		default:
			d.Unchanged++
		}
	}
	done := make(map[string]bool, len(old))
	for _, r := range old {
		k := strings.TrimSpace(r.Title)
		if !seen[k] && !done[k] {
			d.Removed = append(d.Removed, r)
		}
		done[k] = true
	}
	return d
}
