package handlers

import (
	"context"
	"fmt"
	"unicode/utf8"

	"groupflow/internal/wix"
	"groupflow/messages"
)

// settingsDiffer lists the settings the command gives (non-empty) that the
// reused group x has otherwise. An unset privacy status in the command is
// no wish (the default PUBLIC applies to new groups only). The group's
// value, as Wix answered it, is cut to the command's limit for that setting
// (MaxGroupTeaserLen, MaxMemberTitleLen; MaxGroupNameLen for the privacy
// status, an enum) and marked "…" when cut: it goes into the group step's
// checkpoint and group_provisioned, and Wix's answers are not bounded.
func settingsDiffer(x wix.Group, want messages.GroupSpec) []messages.SettingDifference {
	var out []messages.SettingDifference
	for _, s := range []struct {
		name, group, command string
		max                  int
	}{
		{"privacyStatus", x.PrivacyStatus, want.PrivacyStatus, messages.MaxGroupNameLen},
		{"teaser", x.Teaser, want.Teaser, messages.MaxGroupTeaserLen},
		{"memberTitle", x.MemberTitle, want.MemberTitle, messages.MaxMemberTitleLen},
	} {
		if s.command != "" && s.command != s.group {
			out = append(out, messages.SettingDifference{Setting: s.name, Group: clipRunes(s.group, s.max), Command: s.command})
		}
	}
	return out
}

// clipRunes returns s cut to max characters, "…" added when cut.
func clipRunes(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	return string([]rune(s)[:max]) + "…"
}

// updateSettings makes the reused group's differing settings the command's
// (one Update Group call; a redelivery repeats it) when it asks; it reports
// whether they were updated.
func updateSettings(ctx context.Context, site *wix.Site, c *messages.ProvisionGroup, g groupStep) (bool, error) {
	if !g.Reused || len(g.Differ) == 0 || !c.UpdateSettings {
		return false, nil
	}
	patch := wix.Group{ID: g.ID}
	for _, d := range g.Differ {
		switch d.Setting {
		case "privacyStatus":
			patch.PrivacyStatus = d.Command
		case "teaser":
			patch.Teaser = d.Command
		case "memberTitle":
			patch.MemberTitle = d.Command
		}
	}
	// Idempotent (a patch to the command's values): no checkpoint.
	if _, err := site.UpdateGroup(ctx, patch); err != nil {
		return false, fmt.Errorf("update the reused group's settings: %w", err)
	}
	return true, nil
}
