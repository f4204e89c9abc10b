"""Columnar tagging of many plain comma lists at once, for catalog builds.

A first build of a big catalog tags hundreds of thousands of distinct lists that are made of a
few thousand distinct pieces ("정제수", "글리세린", "판테놀(0.2%)"...). `Tagger.tag` builds Python
objects for every ingredient of every list and the build then copies them into columns: about
0.45 ms of CPU per list. Here each distinct piece is tagged once, by the Tagger's own per-piece
code (`Tagger._piece`, the cache behind its plain-list fast path), and a batch's result rows are
assembled with numpy index arithmetic and Arrow `take`: per list, the Python work is splitting the
text and a dict lookup per piece.

Only the lists the Tagger's fast path covers come out of here (plain comma lists without group
headers, notes, markup or a wrapped name); the caller tags the rest with `Tagger.tag`. For those
lists the rows equal what `Tagger.tag` gives (positions, deduplicated matches and flags, the first
position of a token as the evidence position): tests compare both on every row of the real crawl.
"""

from __future__ import annotations

from typing import Any

from deeproot.errors import InputError

# A registry past this many pieces starts over (between batches): a real catalog's long tail of
# one-off pieces must not grow a worker's memory without bound.
MAX_PIECES = 100_000


class PieceRegistry:
    """Every distinct piece seen by this process, tagged once, stored as integer columns.

    Strings (token texts, names, standard names, table entries, types, flags, sources, ways)
    are interned in one pool; a piece's ingredients, its matches per table and its flags are
    slices of flat integer lists, so a batch of lists turns into rows by indexing.
    """

    def __init__(self, taggers: dict[str, Any]):
        self.taggers = taggers
        self.tables = list(taggers)
        self.first = taggers[self.tables[0]]
        self.reset()

    def reset(self) -> None:
        self.ids: dict[str, int] = {}
        self.tok_ids: dict[tuple, int] = {}
        self.known: list[bool] = []
        self.pool: dict[str, int] = {}
        self.strings: list[str] = []
        self.sigs: dict[tuple, int] = {}
        # ingredients: per piece (start, count); per ingredient text, name, canonical, how
        self.tok_start: list[int] = []
        self.tok_n: list[int] = []
        self.tok: tuple[list[int], ...] = ([], [], [], [])
        # matches per table and flags: per piece (start, count); per row its string ids + sig
        self.m_start: list[list[int]] = [[] for _ in self.tables]
        self.m_n: list[list[int]] = [[] for _ in self.tables]
        self.m: list[tuple[list[int], ...]] = [([], [], [], [], [], []) for _ in self.tables]
        self.f_start: list[int] = []
        self.f_n: list[int] = []
        self.f: tuple[list[int], ...] = ([], [], [], [], [], [], [])
        self._np: dict[str, Any] | None = None

    def size(self) -> int:
        return len(self.known)

    def _s(self, s: str | None) -> int:
        if s is None:
            return -1
        i = self.pool.get(s)
        if i is None:
            self._np = None
            i = self.pool[s] = len(self.strings)
            self.strings.append(s)
        return i

    def _sig(self, sig: tuple) -> int:
        i = self.sigs.get(sig)
        if i is None:
            i = self.sigs[sig] = len(self.sigs)
        return i

    def piece_id(self, piece: str) -> int:
        """The id of a piece of a plain list, tagged the way `Tagger._fast` tags it."""
        pid = self.ids.get(piece)
        if pid is not None:
            return pid
        known, _, placed, flags = self.first._piece(piece, store=False)
        ms = [self.taggers[t]._piece(piece, store=False)[1] for t in self.tables]
        pid = self.ids[piece] = self._add(known, placed[0], ms, flags)
        return pid

    def token_id(self, tok: Any) -> int:
        """The id of one token of a list the full parser read, tagged the way `Tagger.tag`
        tags it (normalised and matched by each table's Tagger, flags by the first)."""
        k = (tok.text, tok.name, tok.attrs, tok.segmented)
        tid = self.tok_ids.get(k)
        if tid is not None:
            return tid
        first = self.first
        ing = first.normalize(tok)
        flags = first._ingredient_flags(ing) if first.flag_index is not None else ()
        ms = []
        for t in self.tables:
            tagger = self.taggers[t]
            ms.append(tagger._matches(tagger.normalize(tok)))
        tid = self.tok_ids[k] = self._add(True, (ing,), ms, flags)
        return tid

    def _add(self, known: bool, ings: Any, ms_per_table: list, flags: Any) -> int:
        self._np = None
        s = self._s
        self.tok_start.append(len(self.tok[0]))
        self.tok_n.append(len(ings))
        for ing in ings:
            for col, v in zip(
                self.tok, (ing.token.text, ing.token.name, ing.canonical, ing.how), strict=True
            ):
                col.append(s(v))
        for t, ms in enumerate(ms_per_table):
            cols = self.m[t]
            self.m_start[t].append(len(cols[0]))
            self.m_n[t].append(len(ms))
            for m in ms:
                vals = (s(m.type), s(m.token), s(m.canonical), s(m.entry), s(m.how),
                        self._sig((m.type, m.entry, m.canonical)))
                for col, v in zip(cols, vals, strict=True):
                    col.append(v)
        self.f_start.append(len(self.f[0]))
        self.f_n.append(len(flags))
        for f in flags:
            fvals = (s(f.flag), s(f.token), s(f.canonical), s(f.entry), s(f.source), s(f.how),
                     self._sig((f.flag, f.entry, f.canonical)))
            for col, v in zip(self.f, fvals, strict=True):
                col.append(v)
        self.known.append(known)
        return len(self.known) - 1

    def arrays(self) -> dict[str, Any]:
        """numpy views of the registry (rebuilt only after it grew) and the string pool."""
        if self._np is None:
            import numpy as np
            import pyarrow as pa

            def a(x: list) -> Any:
                return np.asarray(x, dtype=np.int64)

            self._np = {
                "known": np.asarray(self.known, dtype=bool),
                "tok_start": a(self.tok_start),
                "tok_n": a(self.tok_n),
                "tok": [a(c) for c in self.tok],
                "m_start": [a(c) for c in self.m_start],
                "m_n": [a(c) for c in self.m_n],
                "m": [[a(c) for c in cols] for cols in self.m],
                "f_start": a(self.f_start),
                "f_n": a(self.f_n),
                "f": [a(c) for c in self.f],
                "pool": pa.array(self.strings, pa.string()),
                "n_strings": len(self.strings),
                "n_sigs": max(1, len(self.sigs)),
            }
        return self._np


# Texts the vectorised split may take: printable ASCII and Hangul syllables only (so no control,
# zero-width or compatibility character, nothing NFKC would change, and the only whitespace is
# " "), Hangul somewhere, a comma in the first 40 characters, none of the characters that make
# `simple_pieces` refuse a list, no comma inside parentheses (a superset of its check), no
# leading quote, and no run of digit commas ("1,2,3-…", which a non-overlapping replace gets
# wrong). Everything else goes through `simple_pieces` one text at a time, as before.
# printable ASCII without & * : ; < > @ [ ] (simple_pieces refuses those), and Hangul syllables
_VEC_CHARSET = r"^[\x20-\x25\x27-\x29\x2b-\x39\x3d\x3f\x41-\x5a\x5c\x5e-\x7e가-힣]+$"
_VEC_REFUSE = (r"\([^()]*,[^()]*\)", r"^ *['\"`]", r"[0-9],[0-9],[0-9]")


def _split_vectorised(registry: PieceRegistry, texts: Any) -> tuple[Any, Any, Any, Any]:
    """The vectorised split of the texts it can take (`_VEC_CHARSET`, `_VEC_REFUSE`).

    Returns (taken: bool per text, fast text indexes, their piece ids flattened, pieces per
    text); a taken text that turns out not plain (three pieces or fewer, a wrapped name) is
    taken and not fast: the full Tagger handles it.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from deeproot.ingredients.parser import MAX_TEXT_CHARS, joins_with_next

    ok = pc.and_kleene(pc.is_valid(texts), pc.match_substring_regex(texts, _VEC_CHARSET))
    ok = pc.and_(ok, pc.less_equal(pc.utf8_length(texts), MAX_TEXT_CHARS))
    ok = pc.and_(ok, pc.match_substring_regex(texts, "[가-힣]"))
    ok = pc.and_(ok, pc.match_substring(pc.utf8_slice_codeunits(texts, 0, 40), ","))
    for pattern in _VEC_REFUSE:
        ok = pc.and_(ok, pc.invert(pc.match_substring_regex(texts, pattern)))
    taken = np.asarray(ok.fill_null(False), dtype=bool)
    idx = np.flatnonzero(taken)
    empty = np.empty(0, dtype=np.int64)
    if not len(idx):
        return taken, empty, empty, empty
    sub = texts.take(pa.array(idx))
    # commas between digits ("1,2-헥산다이올") are not separators
    glued = pc.replace_substring_regex(sub, r"([0-9]),([0-9])", "\\1\x01\\2")
    lists = pc.split_pattern(glued, ",")
    flat = pc.utf8_trim(pc.replace_substring(lists.flatten(), "\x01", ","), " ")
    keep = np.asarray(pc.not_equal(pc.utf8_length(flat), 0), dtype=bool)
    owner = np.repeat(np.arange(len(idx)), np.asarray(lists.value_lengths(), dtype=np.int64))
    owner = owner[keep]
    flat = flat.filter(pa.array(keep))
    counts = np.bincount(owner, minlength=len(idx))
    enc = pc.dictionary_encode(flat)
    uniq = enc.dictionary.to_pylist()
    piece_id = registry.piece_id
    ids = registry.ids
    map_ids = np.fromiter(
        (ids[p] if p in ids else piece_id(p) for p in uniq), dtype=np.int64, count=len(uniq)
    )
    codes = np.asarray(enc.indices, dtype=np.int64)
    pids = map_ids[codes]
    good = counts > 3
    # a wrapped name ("하이드로제네이티드, 폴리데센"): an unknown piece the next one completes
    known = np.asarray(registry.known, dtype=bool)
    suspect = np.flatnonzero(~known[pids])
    if len(suspect):
        d = registry.first.dictionary
        last = np.cumsum(counts) - 1
        is_last = np.zeros(len(pids), dtype=bool)
        is_last[last[counts > 0]] = True
        for k in suspect:
            t = owner[k]
            if good[t] and not is_last[k] and joins_with_next(
                uniq[codes[k]], uniq[codes[k + 1]], d
            ):
                good[t] = False
    fast_local = np.flatnonzero(good)
    return taken, idx[fast_local], pids[good[owner]], counts[fast_local]


def split_plain(registry: PieceRegistry, texts: Any) -> tuple[Any, Any, Any]:
    """Which texts the fast path takes: (their indexes, piece ids of all of them flattened, the
    number of pieces of each). The others are left to `Tagger.tag`.

    `texts`: an Arrow string array (the vectorised split takes most lists, see
    `_split_vectorised`) or a list of str / None (one text at a time).
    """
    import numpy as np
    import pyarrow as pa

    if isinstance(texts, list):
        texts = pa.array(texts, pa.string())
    taken, v_fast, v_flat, v_counts = _split_vectorised(registry, texts)
    rest = np.flatnonzero(~taken)
    p_fast, p_flat, p_counts = _split_each(
        registry, [texts[int(i)].as_py() for i in rest]
    )
    return (
        np.concatenate([v_fast, rest[np.asarray(p_fast, dtype=np.int64)]]),
        np.concatenate([v_flat, np.asarray(p_flat, dtype=np.int64)]),
        np.concatenate([v_counts, np.asarray(p_counts, dtype=np.int64)]),
    )


def _split_each(registry: PieceRegistry, texts: list[str | None]
                ) -> tuple[list[int], list[int], list[int]]:
    """`split_plain` one text at a time, with the Tagger's own checks (`simple_pieces`)."""
    from deeproot.ingredients.parser import joins_with_next, simple_pieces, strip_controls
    from deeproot.ingredients.tagger import check_text

    d = registry.first.dictionary
    known = registry.known
    piece_id = registry.piece_id
    ids = registry.ids
    fast: list[int] = []
    flat: list[int] = []
    counts: list[int] = []
    for i, text in enumerate(texts):
        if not text:
            continue
        try:
            check_text(text)
        except InputError:
            continue  # Tagger.tag says why, in the texts table
        pieces = simple_pieces(strip_controls(text))
        if pieces is None:
            continue
        got = [ids.get(p) for p in pieces]
        pids: list[int] = (
            [piece_id(p) for p in pieces] if None in got else got  # type: ignore[assignment]
        )
        last = len(pieces) - 1
        if not all(known[p] for p in pids) and any(
            not known[p] and k < last and joins_with_next(pieces[k], pieces[k + 1], d)
            for k, p in enumerate(pids)
        ):
            continue  # a wrapped name: the parser joins it
        fast.append(i)
        flat.extend(pids)
        counts.append(len(pids))
    return fast, flat, counts


def split_parsed(registry: PieceRegistry, texts: list[str]
                 ) -> tuple[list[int], list[int], list[int], list[bool]]:
    """Lists the full parser must read (groups, notes, markup, wrapped names): parsed once,
    each distinct token tagged once. Returns the token ids flattened, tokens per text, each
    token's option-group label (string id, -1 for none) and each text's placeholder flag; the
    texts must be non-empty and pass `check_text`."""
    from deeproot.ingredients.parser import parse, strip_controls

    d = registry.first.dictionary
    token_id = registry.token_id
    sid = registry._s
    flat: list[int] = []
    counts: list[int] = []
    groups: list[int] = []
    placeholder: list[bool] = []
    for text in texts:
        parsed = parse(strip_controls(text), d)
        for tok in parsed.tokens:
            flat.append(token_id(tok))
            groups.append(sid(tok.group))
        counts.append(len(parsed.tokens))
        placeholder.append(parsed.placeholder)
    return flat, counts, groups, placeholder


def _ranges(starts: Any, counts: Any) -> tuple[Any, Any]:
    """Concatenated ranges [start, start + count) and, per element, which range it is in."""
    import numpy as np

    total = int(counts.sum())
    which = np.repeat(np.arange(len(counts)), counts)
    offs = np.cumsum(counts) - counts
    return np.repeat(starts, counts) + (np.arange(total) - offs[which]), which


def _first_rows(keys: Any) -> Any:
    """Indexes of the first row of each distinct key, in row order."""
    import numpy as np

    _, first = np.unique(keys, return_index=True)
    return np.sort(first)


def assemble(registry: PieceRegistry, hashes: list[str], fast: Any, flat: Any, counts: Any,
             groups: Any = None, placeholder: Any = None) -> dict[str, dict[str, Any]]:
    """Result columns (Arrow arrays or scalars per column name) of the fast texts, in the order
    `catalog.tagging` writes them: per text its matches (table by table), flags, ingredients.
    `groups`: per flattened piece, its option-group label (string id, -1 none; a piece of a
    parsed list is one token); `placeholder`: per text. Both default to none / False."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    r = registry.arrays()
    pool = r["pool"]
    ns = r["n_strings"]
    pids = np.asarray(flat, dtype=np.int64)
    text_of_piece = np.repeat(np.arange(len(fast)), np.asarray(counts, dtype=np.int64))
    hash_arr = pa.array([hashes[i] for i in fast], pa.string())

    def strings(idx: Any) -> Any:
        return pc.take(pool, pa.array(idx, mask=idx < 0))

    # ingredients, with their positions in the list
    tok, piece_row = _ranges(r["tok_start"][pids], r["tok_n"][pids])
    t_text = text_of_piece[piece_row]
    n_tok = np.bincount(t_text, minlength=len(fast))
    position = np.arange(len(tok)) - np.repeat(np.cumsum(n_tok) - n_tok, n_tok)
    tok_text, tok_name, tok_canon, tok_how = (c[tok] for c in r["tok"])
    n_unknown = np.bincount(t_text, weights=tok_canon < 0, minlength=len(fast))

    # the first position of each token text or name in its list (Tagger's evidence position)
    keys = np.empty(2 * len(tok), dtype=np.int64)
    keys[0::2] = t_text * ns + tok_text
    keys[1::2] = t_text * ns + tok_name
    uniq, first = np.unique(keys, return_index=True)
    first_pos = position[first // 2]

    def pos_of(text_ix: Any, token_sid: Any) -> Any:
        return first_pos[np.searchsorted(uniq, text_ix * ns + token_sid)]

    def evidence(starts: Any, ns_: Any, cols: list) -> tuple[Any, list]:
        rows, which = _ranges(starts[pids], ns_[pids])
        texts = text_of_piece[which]
        keep = _first_rows(texts * r["n_sigs"] + cols[-1][rows])  # one per signature per list
        rows, texts = rows[keep], texts[keep]
        return texts, [c[rows] for c in cols[:-1]]

    m_text, m_cols, m_table = [], [], []
    for t in range(len(registry.tables)):
        texts, cols = evidence(r["m_start"][t], r["m_n"][t], r["m"][t])
        m_text.append(texts)
        m_cols.append(cols)
        m_table.append(np.full(len(texts), t, dtype=np.int64))
    mt = np.concatenate(m_text)
    order = np.argsort(mt, kind="stable")  # per list: the first table's rows, then the next
    mt = mt[order]
    mc = [np.concatenate([c[k] for c in m_cols])[order] for k in range(5)]
    table_ix = np.concatenate(m_table)[order]
    table_names = pa.array(registry.tables, pa.string())

    f_text, f_cols = evidence(r["f_start"], r["f_n"], r["f"])

    hash_take = hash_arr.take
    return {
        "texts": {
            "text_hash": hash_arr,
            "placeholder": pa.array(
                np.zeros(len(fast), dtype=bool) if placeholder is None
                else np.asarray(placeholder, dtype=bool)),
            "n_ingredients": pa.array(n_tok.astype(np.int32)),
            "n_unknown": pa.array(n_unknown.astype(np.int32)),
            "error": pa.nulls(len(fast), pa.string()),
        },
        "text_ingredients": {
            "text_hash": hash_take(pa.array(t_text)),
            "position": pa.array(position.astype(np.int32)),
            "token": strings(tok_text),
            "name": strings(tok_name),
            "canonical": strings(tok_canon),
            "how": strings(tok_how),
            "group_label": pa.nulls(len(tok), pa.string()) if groups is None
            else strings(np.asarray(groups, dtype=np.int64)[piece_row]),
        },
        "text_matches": {
            "text_hash": hash_take(pa.array(mt)),
            "table_name": table_names.take(pa.array(table_ix)),
            "type": strings(mc[0]),
            "position": pa.array(pos_of(mt, mc[1]).astype(np.int32)),
            "token": strings(mc[1]),
            "canonical": strings(mc[2]),
            "entry": strings(mc[3]),
            "how": strings(mc[4]),
        },
        "text_flags": {
            "text_hash": hash_take(pa.array(f_text)),
            "flag": strings(f_cols[0]),
            "position": pa.array(pos_of(f_text, f_cols[1]).astype(np.int32)),
            "token": strings(f_cols[1]),
            "canonical": strings(f_cols[2]),
            "entry": strings(f_cols[3]),
            "source": strings(f_cols[4]),
            "how": strings(f_cols[5]),
        },
    }
