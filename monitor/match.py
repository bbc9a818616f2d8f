"""Entry identity (pure): which entry ever seen is this item?

SPEC.md's tiers, strongest first: the same canonical link; the same last path
segment of the link, with its query (an entry moved under /archives/ keeps its
slug; `view.php?id=3` is not `view.php?id=7`); the same normalised title; a
clearly best description similarity. The strong tiers are dictionary lookups,
so a cycle costs O(items); text similarity runs only on the leftovers of all
pages together, after every strong match is made.

Items of one page with the same canonical link (or, without a link, the same
title and description) are one entry: a "featured" copy is not a new entry.
A key shared by several distinct items of one page (ten "Read more" titles
with different links) is ambiguous and skipped at that tier.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from difflib import SequenceMatcher
from urllib.parse import unquote, urlsplit

from msgspec import Struct

from monitor.canonical import (
    PLAIN_LINK,
    canonical_link,
    canonical_query,
    comparable_text,
)
from monitor.models import Entry

# Description similarity: at least this ratio, and this far ahead of the runner-up.
SIMILARITY_MIN = 0.7
SIMILARITY_MARGIN = 0.1
# Shorter descriptions are no evidence of identity ("About us." is like "About it.").
SIMILARITY_MIN_CHARS = 30
# Only this much of each description is compared: SequenceMatcher is quadratic,
# and a hostile page may carry megabyte-long text.
SIMILARITY_WINDOW = 2000
# At most this many pairs are scored in one cycle (a bound on hostile input).
SIMILARITY_MAX_PAIRS = 50_000
# A word in more candidates' descriptions than this says nothing about identity.
SIMILARITY_COMMON_WORD = 200
# A pair whose score cannot reach this can be neither the best nor a runner-up close
# enough to block it (best >= SIMILARITY_MIN, lead >= SIMILARITY_MARGIN): it is not scored.
# The 1e-9 keeps the float subtraction of the margin test on the safe side.
SIMILARITY_RELEVANT = SIMILARITY_MIN - SIMILARITY_MARGIN - 1e-9
WORD = re.compile(r"\w{3,}")  # words that count as evidence when finding pairs
ANY_WORD = re.compile(r"\w+")


class Candidate(Struct, frozen=True):
    """An entry ever seen, as matching needs it."""

    entry_id: str
    title: str
    link: str | None
    description: str
    removed: bool = False


def link_key(link: str | None) -> str | None:
    """The link's canonical form (SPEC.md): the first identity tier."""
    return canonical_link(link)


def slug_key(link: str | None) -> str | None:
    """The link's last non-empty path segment with its query, decoded, lower-cased, or None."""
    if not link:
        return None
    plain = PLAIN_LINK.fullmatch(link)  # no query, no URL parse (a test holds them equal)
    if plain and "%" not in link:
        segment = next((s for s in reversed((plain["path"] or "").split("/")) if s), None)
        return segment.casefold() if segment else None
    return _slug_parsed(link)


def _slug_parsed(link: str) -> str | None:
    try:
        parts = urlsplit(link)
    except ValueError:  # a broken URL ("http://[x"): no slug to compare
        return None
    segments = [s for s in parts.path.split("/") if s]
    if not segments:
        return None
    query = canonical_query(parts.query)
    return unquote(segments[-1]).casefold() + (f"?{query}" if query else "")


def title_key(title: str) -> str | None:
    """The title as compared: normalised, case-folded; None for no title."""
    key = comparable_text(title).casefold()
    return key or None


def fields_key(entry: Entry | Candidate) -> tuple[str, str | None, str]:
    """All three fields as compared: two items with equal keys are one item."""
    return (comparable_text(entry.title), link_key(entry.link), comparable_text(entry.description))


def copy_key(entry: Entry) -> object:
    """Items of one page with the same key are copies of one entry (a "featured" copy)."""
    return _copy_key(entry, link_key(entry.link))


def _copy_key(entry: Entry, link: object) -> object:
    """copy_key, given the entry's link key."""
    return ("link", link) if link is not None else ("fields", fields_key(entry))


TIERS: tuple[Callable[[Entry | Candidate], object], ...] = (
    lambda e: link_key(e.link),
    lambda e: slug_key(e.link),
    lambda e: title_key(e.title),
)


def tier_keys(entry: Entry | Candidate) -> list[object]:
    """TIERS' keys of one entry, link first."""
    return [key_of(entry) for key_of in TIERS]


KeysOf = Callable[[Entry], list[object]]  # tier_keys, or a cycle's KeysOnce


class KeysOnce:
    """TIERS' keys of each item, computed once a cycle; an entry's from an item's fields.

    A cycle's passes (copies, the keys wanted, each tier, the new entries) each read an
    item's keys. The items are kept alive here, so that an id stays theirs while it is a key.
    """

    def __init__(self) -> None:
        self._keys: dict[int, list[object]] = {}
        self._items: list[Entry | Candidate] = []
        self._by_link: dict[str | None, list[object]] | None = None
        self._by_title: dict[str, list[object]] = {}

    def __call__(self, item: Entry | Candidate) -> list[object]:
        keys = self._keys.get(id(item))
        if keys is None:
            keys = self._keys[id(item)] = tier_keys(item)
            self._items.append(item)
        return keys

    def of_entry(self, candidate: Candidate) -> list[object]:
        """TIERS' keys of an entry ever seen, taken from an item keyed so far that has the same
        link (or title) where there is one: an entry still on a changed page is one of its
        items (on a page of 10,000 entries, 10,000 links not canonicalised twice)."""
        if self._by_link is None:  # the items are all keyed by the time entries are looked up
            self._by_link = {item.link: keys for item, keys in self._keyed()}
            self._by_title = {item.title: keys for item, keys in self._keyed()}
        same_link = self._by_link.get(candidate.link)
        same_title = self._by_title.get(candidate.title)
        return [
            same_link[0] if same_link else link_key(candidate.link),
            same_link[1] if same_link else slug_key(candidate.link),
            same_title[2] if same_title else title_key(candidate.title),
        ]

    def _keyed(self) -> Iterable[tuple[Entry | Candidate, list[object]]]:
        return ((item, self._keys[id(item)]) for item in self._items)


class _Index:
    """Candidates by tier key, in preference order once a page is known.

    With `wanted` (the keys of the items to match), only the candidates that share a key
    with some item are indexed: a cycle looks up a few thousand items' keys, and indexing
    all 25,000 entries ever seen cost ~15 MB of lists and tuples at 1,000 pages. A
    candidate left out could not have been found by any lookup of those items.
    """

    def __init__(
        self,
        candidates: Iterable[Candidate],
        wanted: _Wanted | None = None,
        keys_of: KeysOnce | None = None,
    ) -> None:
        self.order: dict[str, int] = {}
        self.by_id: dict[str, Candidate] = {}
        self.keys: list[dict[object, list[str]]] = [defaultdict(list) for _ in TIERS]
        # Identical fields, found through the link and title keys the tiers compute anyway:
        # a description's comparable form is then computed for the few candidates a lookup
        # finds, not for every entry ever seen.
        self.by_link_and_title: dict[object, list[str]] = defaultdict(list)
        keys_of_entry = (keys_of or KeysOnce()).of_entry
        for position, candidate in enumerate(candidates):
            if wanted is None:
                self._add(candidate, tier_keys(candidate), position)
            elif wanted.admits(keys := keys_of_entry(candidate)):
                self._add(candidate, keys, position)

    def add(
        self, candidate: Candidate, wanted: _Wanted | None = None, keys: list[object] | None = None
    ) -> None:
        keys = keys if keys is not None else tier_keys(candidate)
        if wanted is None or wanted.admits(keys):
            self._add(candidate, keys, len(self.order))

    def _add(self, candidate: Candidate, keys: list[object], position: int) -> None:
        self.order[candidate.entry_id] = position
        self.by_id[candidate.entry_id] = candidate
        for tier, key in enumerate(keys):
            if key is not None:
                self.keys[tier][key].append(candidate.entry_id)
        self.by_link_and_title[(keys[0], keys[2])].append(candidate.entry_id)

    def identical(self, item: Entry, keys_of: KeysOf = tier_keys) -> list[str]:
        """Candidates whose three fields compare equal to the item's, oldest first."""
        keys = keys_of(item)
        bucket = self.by_link_and_title.get((keys[0], keys[2]))
        if not bucket:  # most lookups (a new entry's): no description to put in its form
            return []
        fields = fields_key(item)  # equal fields have equal link and title keys: one bucket
        return [c for c in bucket if fields_key(self.by_id[c]) == fields]

    def rank(self, entry_id: str, members: frozenset[str]) -> tuple[int, int, int]:
        """Lower is better: already on this page, then not removed, then oldest."""
        candidate = self.by_id[entry_id]
        return (entry_id not in members, candidate.removed, self.order[entry_id])


class _Wanted(Struct, frozen=True):
    """The tier keys of the items to match: what a candidate must share to be looked up."""

    keys: tuple[frozenset[object], ...]  # one set per tier
    bare: bool  # some item has neither link nor title: found by its description alone

    @classmethod
    def of(cls, items: Iterable[Entry], keys_of: KeysOf = tier_keys) -> _Wanted:
        keys: list[set[object]] = [set() for _ in TIERS]
        bare = False
        for item in items:
            item_keys = keys_of(item)
            for tier, key in enumerate(item_keys):
                keys[tier].add(key)
            bare = bare or (item_keys[0] is None and item_keys[2] is None)
        for tier_keys in keys:
            tier_keys.discard(None)
        return cls(tuple(frozenset(k) for k in keys), bare)

    @classmethod
    def shared(cls, groups: Iterable[Iterable[Entry]], keys_of: KeysOf = tier_keys) -> _Wanted:
        """The keys found in two groups or more (an item's keys counted once per group)."""
        wanted = [cls.of(items, keys_of) for items in groups]
        counts: list[Counter[object]] = [Counter() for _ in TIERS]
        for group in wanted:
            for tier, keys in enumerate(group.keys):
                counts[tier].update(keys)
        twice = tuple(frozenset(k for k, n in count.items() if n > 1) for count in counts)
        return cls(twice, sum(group.bare for group in wanted) > 1)

    def admits(self, keys: Sequence[object]) -> bool:
        if any(key in wanted for key, wanted in zip(keys, self.keys, strict=True)):
            return True
        return self.bare and keys[0] is None and keys[2] is None


def distinct_items(items: Sequence[Entry], keys_of: KeysOf | None = None) -> list[Entry]:
    """The page's items without copies, each at its first occurrence, in page order."""
    first: dict[object, Entry] = {}
    for item in items:
        key = copy_key(item) if keys_of is None else _copy_key(item, keys_of(item)[0])
        first.setdefault(key, item)
    return list(first.values())


def match_cycle(
    page_items: Mapping[str, Sequence[Entry]],
    previous_members: Mapping[str, Sequence[str]],
    candidates: Iterable[Candidate],
    *,
    unavailable: set[str],
    new_id: Callable[[], str],
    keys_of: KeysOnce | None = None,
) -> dict[str, list[tuple[str, Entry]]]:
    """Each page's entries: (entry id, fields of its first occurrence), unique, in page order.

    `page_items` is in processing order (active pages first); `unavailable` are
    entries standing on pages held this cycle, which similarity must not take.
    Unknown items become new entries (ids from `new_id`); copies of one entry on a
    page (same canonical link, or without a link the same fields) count once.
    `keys_of` is the cycle's memo of the items' keys, if the caller keyed them already.
    """
    keys_of = KeysOnce() if keys_of is None else keys_of
    distinct = {page: distinct_items(items, keys_of) for page, items in page_items.items()}
    candidates = list(candidates)  # the strong tiers' index, then similarity's pool
    index = _Index(())  # a first check: nothing to look up
    if candidates:
        wanted = _Wanted.of((i for items in distinct.values() for i in items), keys_of)
        index = _Index(candidates, wanted, keys_of)
    result: dict[str, list[str | None]] = {}
    claimed: dict[str, set[str]] = {}
    for page, items in distinct.items():
        members = frozenset(previous_members.get(page, ()))
        claimed[page] = set()
        if index.by_id:
            result[page] = _match_strong(items, index, members, claimed[page], keys_of)
        else:  # nothing seen yet (a first check), or nothing shares a key: no strong match
            result[page] = [None] * len(items)

    taken = set().union(*claimed.values()) if claimed else set()
    _match_similar(distinct, result, candidates, taken | unavailable, claimed)
    _match_new(distinct, result, claimed, new_id, keys_of)
    matched: dict[str, list[tuple[str, Entry]]] = {}
    for page, ids in result.items():
        first: dict[str, Entry] = {}
        for entry_id, item in zip(ids, distinct[page], strict=True):
            first.setdefault(entry_id or "", item)  # members stay unique: first occurrence wins
        matched[page] = list(first.items())
    return matched


def _match_new(
    distinct: Mapping[str, Sequence[Entry]],
    result: dict[str, list[str | None]],
    claimed: dict[str, set[str]],
    new_id: Callable[[], str],
    keys_of: KeysOf = tier_keys,
) -> None:
    """New entries for the items still unknown; one new entry may stand on several pages.

    An item on a later page may be the same new entry as one on an earlier page: only
    new entries with a key found on the leftovers of two pages or more are indexed for
    that (a first check of 1,000 pages indexed all 25,000 for none).
    """
    leftovers = {
        page: [i for i, entry_id in enumerate(result[page]) if entry_id is None]
        for page in distinct
    }
    shared = _Wanted.shared(
        ([distinct[page][i] for i in left] for page, left in leftovers.items()), keys_of
    )
    fresh = _Index(())
    for page, items in distinct.items():
        ids, left = result[page], leftovers[page]
        if not left:
            continue
        found = _match_strong([items[i] for i in left], fresh, frozenset(), claimed[page], keys_of)
        for i, entry_id in zip(left, found, strict=True):
            if entry_id is None:
                entry_id = new_id().replace("-", "")[-12:]  # 48 random bits: short to type
                item = items[i]
                candidate = Candidate(entry_id, item.title, item.link, item.description)
                fresh.add(candidate, shared, keys_of(item))  # its keys are the item's
                claimed[page].add(entry_id)
            ids[i] = entry_id


def _match_strong(
    items: Sequence[Entry],
    index: _Index,
    members: frozenset[str],
    claimed: set[str],
    keys_of: KeysOf = tier_keys,
) -> list[str | None]:
    """Link, slug and title tiers, then identical fields (items of a page without copies)."""
    ids: list[str | None] = [None] * len(items)
    for tier in range(len(TIERS)):
        by_key: dict[object, list[int]] = defaultdict(list)
        for i, item in enumerate(items):
            if ids[i] is None:
                key = keys_of(item)[tier]
                if key is not None:
                    by_key[key].append(i)
        for key, positions in by_key.items():
            if len(positions) != 1:
                continue  # ambiguous on this page: let a later tier decide
            pool = [c for c in index.keys[tier].get(key, ()) if c not in claimed]
            choice = _best(pool, index, members, strict=tier > 0)
            if choice is not None:
                ids[positions[0]] = choice
                claimed.add(choice)
    for i, item in enumerate(items):
        if ids[i] is None:
            pool = [c for c in index.identical(item, keys_of) if c not in claimed]
            choice = _best(pool, index, members, strict=False)
            if choice is not None:
                ids[i] = choice
                claimed.add(choice)
    return ids


def _best(pool: list[str], index: _Index, members: frozenset[str], *, strict: bool) -> str | None:
    """The preferred candidate; with `strict`, None unless it is clearly preferred."""
    if not pool:
        return None
    ranked = sorted(pool, key=lambda c: index.rank(c, members))
    if strict and len(ranked) > 1:
        first, second = index.rank(ranked[0], members), index.rank(ranked[1], members)
        if first[:2] == second[:2]:
            return None  # two equally good entries share this slug or title
    return ranked[0]


def _match_similar(
    page_items: Mapping[str, Sequence[Entry]],
    result: dict[str, list[str | None]],
    candidates: Sequence[Candidate],
    excluded: set[str],
    claimed: dict[str, set[str]],
) -> None:
    """Pair leftover items with leftover entries by a clearly best description similarity.

    Only pairs that share at least half of their words are scored (an inverted
    index finds them), so the cost follows the number of plausible pairs, not
    leftovers x candidates; a pair sharing fewer words is far below SIMILARITY_MIN.
    Of those, a pair whose word counts alone bound its score below SIMILARITY_RELEVANT
    (_may_matter) is not scored either: it could change no choice.
    """
    items = [
        (page, i, page_items[page][i])
        for page, ids in result.items()
        for i, entry_id in enumerate(ids)
        if entry_id is None and len(page_items[page][i].description) >= SIMILARITY_MIN_CHARS
    ]
    pool = [
        c
        for c in candidates
        if c.entry_id not in excluded and len(c.description) >= SIMILARITY_MIN_CHARS
    ]
    if not items or not pool:
        return
    pool_words = [_words(c.description) for c in pool]
    pool_lists: dict[int, list[str]] = {}  # each candidate's words in order, when needed
    item_lists: list[list[str]] = []
    postings: dict[str, list[int]] = defaultdict(list)
    for j, words in enumerate(pool_words):
        for word in words:
            postings[word].append(j)
    pairs: list[tuple[int, int]] = []  # (item, candidate), item by item, at most the cap
    for i, (*_, item) in enumerate(items):
        words = _words(item.description)
        item_list: list[str] | None = None
        shared: Counter[int] = Counter()
        for word in words:
            hits = postings.get(word, ())
            if len(hits) <= SIMILARITY_COMMON_WORD:  # "the", "library": no evidence
                shared.update(hits)
        for j, count in shared.items():
            if 2 * count >= min(len(words), len(pool_words[j])):
                if item_list is None:
                    item_list = _word_list(item.description)
                if j not in pool_lists:
                    pool_lists[j] = _word_list(pool[j].description)
                if _may_matter(count, (words, item_list), (pool_words[j], pool_lists[j])):
                    pairs.append((i, j))
        item_lists.append(item_list or [])
        if len(pairs) >= SIMILARITY_MAX_PAIRS:  # a bound on hostile input, as found so far
            del pairs[SIMILARITY_MAX_PAIRS:]
            break
    by_item: list[dict[int, float]] = [{} for _ in items]
    by_candidate: dict[int, dict[int, float]] = defaultdict(dict)
    scores = _similarities(pairs, item_lists, pool_lists)
    for (i, j), score in scores.items():
        by_item[i][j] = by_candidate[j][i] = score
    for i, row in enumerate(by_item):
        choice = _clear_best(row)
        if choice is not None and _clear_best(by_candidate[choice]) == i:
            page, position, _ = items[i]
            entry_id = pool[choice].entry_id
            result[page][position] = entry_id
            claimed[page].add(entry_id)


def _words(text: str) -> set[str]:
    return set(WORD.findall(comparable_text(text[:SIMILARITY_WINDOW]).casefold()))


def _may_matter(shared: int, a: tuple[set[str], list[str]], b: tuple[set[str], list[str]]) -> bool:
    """Whether a pair's score may reach SIMILARITY_RELEVANT, from its texts' word counts.

    `a` and `b` are each text's distinct words of three letters or more (_words) and its
    words in order (_word_list); `shared` is how many distinct words the two sets share.
    The score, 2 x matched words / (len(a) + len(b)), matches at most the words of a
    text less one occurrence of each of its distinct words the other lacks: a bound
    never below quick_ratio(), hence never below the score.
    """
    (set_a, list_a), (set_b, list_b) = a, b
    matched = min(len(list_a) - len(set_a), len(list_b) - len(set_b)) + shared
    return 2 * matched >= SIMILARITY_RELEVANT * (len(list_a) + len(list_b))


def _clear_best(row: Mapping[int, float]) -> int | None:
    """The key of the best score if it passes SIMILARITY_MIN and leads by SIMILARITY_MARGIN."""
    if not row:
        return None
    ranked = sorted(row, key=lambda j: row[j], reverse=True)
    top = row[ranked[0]]
    runner_up = row[ranked[1]] if len(ranked) > 1 else 0.0
    if top >= SIMILARITY_MIN and top - runner_up >= SIMILARITY_MARGIN:
        return ranked[0]
    return None


def _similarity(a: str, b: str) -> float:
    """Similarity of two descriptions, compared word by word (0..1).

    Words, not characters: a pair costs tens of microseconds instead of a
    millisecond, and an edit that adds a sentence scores as a person would.
    """
    return _bounded_ratio(SequenceMatcher(None, _word_list(a), _word_list(b), autojunk=False))


def _similarities(
    pairs: Sequence[tuple[int, int]],
    items: Sequence[list[str]],
    pool: Mapping[int, list[str]],
) -> dict[tuple[int, int], float]:
    """The score of each pair (i, j) of items[i] and pool[j], texts given as _word_list's:
    _bounded_ratio's, computed without a SequenceMatcher where a bound settles it.

    Most pairs end at the second bound (difflib's quick_ratio: the words the two texts have
    in common, as bags), which is here the size of the intersection of two sets, in C, each
    text's bag made once. The pairs that pass it are scored with a SequenceMatcher, each
    candidate's word index built once (it keeps its second sequence's), not once per pair.
    """
    item_bags: dict[int, frozenset[object]] = {}
    pool_bags: dict[int, frozenset[object]] = {}
    scores: dict[tuple[int, int], float] = {}
    to_match: dict[int, list[int]] = defaultdict(list)
    for i, j in pairs:
        a, b = items[i], pool[j]
        length = len(a) + len(b)
        bound = _ratio(min(len(a), len(b)), length)  # difflib's real_quick_ratio
        if bound >= SIMILARITY_MIN:
            if i not in item_bags:
                item_bags[i] = _bag(a)
            if j not in pool_bags:
                pool_bags[j] = _bag(b)
            bound = _ratio(len(item_bags[i] & pool_bags[j]), length)  # difflib's quick_ratio
            if bound >= SIMILARITY_MIN:
                to_match[j].append(i)
                continue
        scores[i, j] = bound
    matcher = SequenceMatcher(None, autojunk=False)
    for j, members in to_match.items():
        matcher.set_seq2(pool[j])
        for i in members:
            matcher.set_seq1(items[i])
            scores[i, j] = matcher.ratio()
    return scores


def _bag(words: list[str]) -> frozenset[object]:
    """The words as a set in which two bags' intersection is their common words, repeats
    counted: a word once, its second occurrence as (word, 2), and so on."""
    counts = Counter(words)
    repeats = [(word, n) for word, count in counts.items() for n in range(2, count + 1)]
    return frozenset(counts).union(repeats)


def _ratio(matches: int, length: int) -> float:
    """difflib's ratio of `matches` in two sequences of `length` items together."""
    return 2.0 * matches / length if length else 1.0


def _bounded_ratio(matcher: SequenceMatcher[str]) -> float:
    """The matcher's ratio, or a cheap upper bound of it when that is below the minimum.

    The bound is never less than the truth, so the margin test stays conservative.
    """
    for bound in (matcher.real_quick_ratio, matcher.quick_ratio):
        value = bound()
        if value < SIMILARITY_MIN:
            return value
    return matcher.ratio()


def _word_list(text: str) -> list[str]:
    return ANY_WORD.findall(comparable_text(text[:SIMILARITY_WINDOW]).casefold())
