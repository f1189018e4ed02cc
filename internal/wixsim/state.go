package wixsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"groupflow/internal/regularfile"
)

// stateFile is the JSON snapshot written by Save.
type stateFile struct {
	Version int             `json:"version"`
	SavedAt time.Time       `json:"savedAt"`
	Sites   []*siteSnapshot `json:"sites"`
}

type siteSnapshot struct {
	ID            string           `json:"id"`
	OwnerID       string           `json:"ownerId"`
	Members       []Member         `json:"members"`
	Contacts      []Contact        `json:"contacts"`
	Subscriptions []Subscription   `json:"subscriptions"`
	Groups        []*groupSnapshot `json:"groups"`
	SavedAt       time.Time        `json:"savedAt"`
}

type groupSnapshot struct {
	Group     Group           `json:"group"`
	Members   []GroupMember   `json:"members"`
	Questions []Question      `json:"questions,omitempty"`
	Answers   []MemberAnswers `json:"answers,omitempty"`
	Rules     []Rule          `json:"rules,omitempty"`
}

func (st *Site) snapshot() *siteSnapshot {
	st.mu.RLock()
	defer st.mu.RUnlock()
	snap := &siteSnapshot{ID: st.id, OwnerID: st.ownerID, SavedAt: st.now()}
	snap.Members = make([]Member, len(st.members))
	for i, m := range st.members {
		snap.Members[i] = *m
	}
	snap.Contacts = make([]Contact, len(st.contacts))
	for i, c := range st.contacts {
		snap.Contacts[i] = *c
	}
	// subscriptions in a stable order: by creation, then email
	for _, s := range st.subs {
		snap.Subscriptions = append(snap.Subscriptions, *s)
	}
	sortSubs(snap.Subscriptions)
	for _, g := range st.groups {
		gs := &groupSnapshot{Group: g.Group, Questions: g.questions, Rules: g.rules}
		gs.Members = make([]GroupMember, len(g.entries))
		for i, e := range g.entries {
			gs.Members[i] = *e
		}
		for _, ma := range g.answers {
			gs.Answers = append(gs.Answers, MemberAnswers{MemberID: ma.MemberID, Answers: append([]Answer{}, ma.Answers...)})
		}
		snap.Groups = append(snap.Groups, gs)
	}
	return snap
}

func sortSubs(s []Subscription) {
	sortSlice(s, func(a, b Subscription) int {
		if c := a.CreatedDate.Compare(b.CreatedDate); c != 0 {
			return c
		}
		switch {
		case a.Email < b.Email:
			return -1
		case a.Email > b.Email:
			return 1
		}
		return 0
	})
}

// restoreLocked replaces the site's data with a snapshot (caller holds mu).
func (st *Site) restoreLocked(snap *siteSnapshot) {
	st.wipe()
	a, b := siteSeed(st.seed, st.id)
	// a fresh id stream that does not replay the seeding ids
	st.rng = rand.New(rand.NewPCG(a^uint64(snap.SavedAt.UnixNano()), b^uint64(len(snap.Members)+1)*0x9e3779b97f4a7c15))
	for i := range snap.Contacts {
		c := snap.Contacts[i]
		st.indexContact(&c)
	}
	for i := range snap.Members {
		m := snap.Members[i]
		st.seq++
		m.seq = st.seq
		st.members = append(st.members, &m)
		st.memberByID[m.ID] = &m
		if m.LoginEmail != "" {
			st.memberByEmail[m.LoginEmail] = &m
		}
		st.memberByContact[m.ContactID] = &m
		st.memberSlugs[m.Slug] = true
	}
	st.ownerID = snap.OwnerID
	for i := range snap.Subscriptions {
		s := snap.Subscriptions[i]
		st.subs[s.Email] = &s
		st.subByID[s.ID] = &s
	}
	for _, gs := range snap.Groups {
		st.seq++
		g := newGroup(gs.Group, st.seq)
		for i := range gs.Members {
			gm := gs.Members[i]
			g.entries = append(g.entries, &gm)
			g.index[gm.MemberID] = &gm
		}
		g.MembersCount = len(g.entries)
		g.questions = gs.Questions
		g.rules = gs.Rules
		for i := range gs.Answers {
			ma := gs.Answers[i]
			g.answers = append(g.answers, &ma)
			g.answerIdx[ma.MemberID] = &ma
		}
		st.addGroupLocked(g)
		st.groupBySlug[g.Slug] = g
	}
}

// Save writes every site to Options.StateFile (atomically, via a temporary
// file). It is a no-op without a StateFile.
func (s *Server) Save() error {
	if s.opts.StateFile == "" {
		return nil
	}
	return s.SaveTo(s.opts.StateFile)
}

// SaveTo writes every site to path as a JSON snapshot.
func (s *Server) SaveTo(path string) error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	var ids []string
	for id := range s.sites {
		ids = append(ids, id)
	}
	pending := make([]*siteSnapshot, 0, len(s.loaded))
	for _, snap := range s.loaded {
		pending = append(pending, snap)
	}
	s.mu.Unlock()
	sf := stateFile{Version: 1, SavedAt: s.now()}
	for _, id := range ids {
		sf.Sites = append(sf.Sites, s.Site(id).snapshot()) // waits for a concurrent seeding
	}
	sf.Sites = append(sf.Sites, pending...)
	sortSlice(sf.Sites, func(a, b *siteSnapshot) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	tmp, err := os.CreateTemp(filepath.Dir(path), ".wixsim-state-*")
	if err != nil {
		return err
	}
	enc := json.NewEncoder(tmp)
	if err := enc.Encode(&sf); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// MaxStateFile bounds the state file load reads (2 GiB).
const MaxStateFile = 2 << 30

// load reads the state file at path (none there: nothing to load). A path
// that is not a regular file, or one over MaxStateFile, is refused without
// waiting on it or reading it (regularfile.Read).
func (s *Server) load(path string) error {
	data, err := regularfile.Read(path, MaxStateFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var sf stateFile
	if err := json.Unmarshal(data, &sf); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	s.loaded = map[string]*siteSnapshot{}
	for _, snap := range sf.Sites {
		s.loaded[snap.ID] = snap
	}
	return nil
}
