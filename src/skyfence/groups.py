"""Groups: tracks that move together, kept as swarm objects with stable ids.

Two tracks are *linked* when they are close in position and in velocity; the
connected components of the link graph are this scan's candidate groups. Each
candidate is matched to the groups of earlier scans by the members they share,
so a swarm keeps one id while single drones come and go (tracks lost, coasting,
restarted under a new id). A group that comes apart or two that come together
raise ``split`` and ``merge`` events; the largest share keeps the id.

What a watch officer should see is one swarm object, stable. Hence hysteresis:

- a pair already in one group stays linked out to the wider ``keep_*`` limits;
  a new pair must come within the tighter ``join_*`` limits;
- a new group (formed, or split off) is shown, and announced, only once it has
  held together for ``confirm_s``: a few stray tracks drifting off a swarm for a
  scan or two raise nothing;
- it takes ``min_members`` tracks to form a group, but a group keeps its id
  down to two;
- a shown group with no candidate left is kept out of view for ``hold_s`` and
  comes back under its id; only then is it ``dissolved``. A track that drops out
  of its group (or out of view) is remembered as the group's for as long.

Pure numpy/scipy, no I/O. Positions ENU metres, velocities ENU m/s, times float64
Unix seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from skyfence.errors import InputError, SkyfenceError
from skyfence.types import F64, I64, Field, Schema, Tracks, TrackStatus

IntP = NDArray[np.intp]
Bool = NDArray[np.bool_]

EventKind = Literal["formed", "split", "merge", "dissolved"]

#: Columns of :class:`GroupTable`, one row per group in view.
GROUPS_SCHEMA: Final = Schema(
    "groups",
    (
        Field("id", "int64", "", "group id, unique for the life of the tracker, never reused"),
        Field("count", "int64", "", "member tracks in view at this scan"),
        Field("centroid", "float64", "m", "mean member position, local ENU", (3,)),
        Field("extent_m", "float64", "m",
              "largest 3-D distance of a member from the centroid (radius of the sphere "
              "about the centroid that holds every member)"),
        Field("velocity", "float64", "m/s", "mean member velocity, local ENU", (3,)),
        Field("member_ids", "int64", "",
              "member track ids of every group, group by group in row order, ascending "
              "within a group; see member_start"),
        Field("member_start", "int64", "",
              "(g + 1,) offsets: row k's members are "
              "member_ids[member_start[k]:member_start[k + 1]]"),
    ),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupConfig:
    """When tracks form a group, and how the group outlives changes in what is seen.

    A swarm flies in formation 10-50 m between neighbours with one common velocity;
    unrelated drones that cross each other differ in velocity by a good fraction of
    their 10-20 m/s speed (two at 15 m/s crossing at 30° already differ by 7.8 m/s).
    """

    #: A new pair is linked within this distance (3-D): 50 m formation spacing plus the
    #: difference of two tracks' radar cross-range errors at a few km (5 mrad × 3 km ≈
    #: 15 m each). A neighbour further away still joins through the others.
    join_distance_m: float = 80.0
    #: A pair already in one group stays linked out to this distance: 50 m spacing plus
    #: two tracks' 90th-percentile errors inside a swarm (~25 m each), so a track off
    #: its drone does not tear a formation. It also sets how far apart the halves of a
    #: split swarm must be before they are seen apart when velocities cannot tell.
    keep_distance_m: float = 100.0
    #: A new pair is linked when velocities differ by at most this (3-D). Members share
    #: one velocity; 5 m/s leaves room for velocity error of well-held tracks and still
    #: parts drones crossing at 15 m/s more than ~20° apart.
    join_velocity_mps: float = 5.0
    #: A pair already in one group stays linked up to this velocity difference.
    keep_velocity_mps: float = 8.0
    #: With per-track velocity uncertainty given, a pair's velocity limit widens to
    #: √(limit² + k² (σ_i² + σ_j²)), k this: a track whose velocity is barely known
    #: (a swarm member swapped with its neighbours) is judged by where it is; a
    #: well-held one by its velocity too. 3σ: a true member's pair seldom fails.
    velocity_sigmas: float = 3.0
    #: Tracks needed to form a group (two drones together are a pair, not a swarm). A
    #: group keeps its id down to two members.
    min_members: int = 3
    #: A new group is shown and announced once it has held together this long: 2 s is
    #: three 1 s radar scans, enough to ignore stray tracks drifting off a swarm.
    confirm_s: float = 2.0
    #: A shown group with no members in view is held (not shown) this long before it
    #: is dissolved, and a member out of view is remembered as its group's for as long:
    #: covers a track deleted after a few missed looks and restarted, or two missed
    #: looks of a 4 s surveillance radar.
    hold_s: float = 10.0

    def __post_init__(self) -> None:
        limits = {"join_distance_m": self.join_distance_m, "keep_distance_m": self.keep_distance_m,
                  "join_velocity_mps": self.join_velocity_mps,
                  "keep_velocity_mps": self.keep_velocity_mps}
        for name, value in limits.items():
            if not (math.isfinite(value) and value > 0.0):
                raise SkyfenceError(f"GroupConfig.{name} must be a positive number of metres "
                                    f"or m/s, not {value!r}")
        if self.keep_distance_m < self.join_distance_m:
            raise SkyfenceError("GroupConfig.keep_distance_m must be at least join_distance_m")
        if self.keep_velocity_mps < self.join_velocity_mps:
            raise SkyfenceError("GroupConfig.keep_velocity_mps must be at least join_velocity_mps")
        if not (math.isfinite(self.velocity_sigmas) and self.velocity_sigmas >= 0.0):
            raise SkyfenceError("GroupConfig.velocity_sigmas must be a number ≥ 0")
        if isinstance(self.min_members, bool) or not isinstance(self.min_members, int) \
                or self.min_members < 2:
            raise SkyfenceError("GroupConfig.min_members must be an integer ≥ 2")
        for name, value in (("confirm_s", self.confirm_s), ("hold_s", self.hold_s)):
            if not (math.isfinite(value) and value >= 0.0):
                raise SkyfenceError(f"GroupConfig.{name} must be a number of seconds ≥ 0")


@dataclass(frozen=True, slots=True)
class GroupEvent:
    """A change in the group picture, decided at the scan at time ``t`` (s, Unix).

    - ``formed``: ``group_id`` is shown for the first time; ``from_ids`` empty,
      ``to_ids`` ``(group_id,)``.
    - ``split``: parts of group ``group_id`` now fly as groups of their own; it
      keeps its id for its largest part. ``from_ids`` is ``(group_id,)``, ``to_ids``
      ``group_id`` then the new groups' ids, ascending. Announced when the new
      groups are shown (``GroupConfig.confirm_s`` after ``since``), even if
      ``group_id`` itself has ended in the meantime.
    - ``merge``: groups joined into ``group_id``, which kept its id as the largest
      share. ``from_ids`` is ``group_id`` then the ids that ended here, ascending;
      ``to_ids`` ``(group_id,)``.
    - ``dissolved``: ``group_id`` has not been seen for ``GroupConfig.hold_s`` and
      ends; ``from_ids`` ``(group_id,)``, ``to_ids`` empty.
    """

    t: float
    kind: EventKind
    group_id: int
    from_ids: tuple[int, ...]
    to_ids: tuple[int, ...]
    #: When the change was first seen (s, Unix): the new groups' first scan together
    #: (formed, split), the last scan in view (dissolved), ``t`` (merge).
    since: float


@dataclass(frozen=True, slots=True, eq=False)
class GroupTable:
    """Groups in view at one scan, struct of arrays (see ``GROUPS_SCHEMA``), rows by id.

    ``id`` (g,) int64; ``count`` (g,) int64; ``centroid`` (g, 3) ENU m; ``extent_m``
    (g,) m, the largest distance of a member from the centroid; ``velocity`` (g, 3)
    ENU m/s, the members' mean; ``member_ids`` (Σ count,) int64 and ``member_start``
    (g + 1,) int64, CSR-style: ``members(id)`` returns one group's track ids.
    """

    id: I64
    count: I64
    centroid: F64
    extent_m: F64
    velocity: F64
    member_ids: I64
    member_start: I64

    def __len__(self) -> int:
        return int(self.id.shape[0])

    def members(self, group_id: int) -> I64:
        """Track ids of group ``group_id``, ascending (empty if it is not in view)."""
        k = int(np.searchsorted(self.id, group_id))
        if k == self.id.shape[0] or self.id[k] != group_id:
            return np.empty(0, dtype=np.int64)
        return self.member_ids[self.member_start[k]:self.member_start[k + 1]].copy()

    @classmethod
    def empty(cls) -> GroupTable:
        return cls(id=np.empty(0, np.int64), count=np.empty(0, np.int64),
                   centroid=np.empty((0, 3)), extent_m=np.empty(0), velocity=np.empty((0, 3)),
                   member_ids=np.empty(0, np.int64), member_start=np.zeros(1, np.int64))


@dataclass(frozen=True, slots=True, eq=False)
class GroupUpdate:
    """The group picture after one ``GroupTracker.update``.

    ``group`` (n,) int64 is the group id of each input track, in input order, -1
    for a track in no shown group. ``events`` are ordered split, merge, formed,
    dissolved, each by group id.
    """

    t: float
    group: I64
    groups: GroupTable
    events: tuple[GroupEvent, ...]


class GroupOrderError(SkyfenceError):
    """An update older than the group tracker's current time."""


@dataclass(frozen=True, slots=True, eq=False)
class _Match:
    """How this scan's components continue the known groups.

    ``comp_gid`` (c,): group id of each component, -1 for none. ``edge_comp``,
    ``edge_group`` (e,): components and known-group indices sharing enough members,
    best first. ``taken`` (k,): known groups that continue. ``fresh`` (f,): new ids,
    ``fresh_parent`` (f,) the shown group each was split from, or -1.
    """

    comp_gid: I64
    edge_comp: IntP
    edge_group: IntP
    taken: Bool
    fresh: I64
    fresh_parent: I64


class GroupTracker:
    """Push-style swarm grouping: ``update(t, track_id, pos, vel) -> GroupUpdate``.

    The result depends on the set of tracks given, not on their order. Group ids
    are int64, start at 1 and are never reused (ids of groups that broke up before
    they were shown are skipped, not handed out again).
    """

    def __init__(self, config: GroupConfig | None = None) -> None:
        self.config = config or GroupConfig()
        self.t: float | None = None
        self._next_id = 1
        # Known groups, shown or not yet, ascending id: last and first time in view (s),
        # whether shown, and the shown group a not-yet-shown one split from (-1: none).
        self._g_id = np.empty(0, dtype=np.int64)
        self._g_seen = np.empty(0)
        self._g_first = np.empty(0)
        self._g_shown = np.empty(0, dtype=bool)
        self._g_parent = np.empty(0, dtype=np.int64)
        # Roster: for each track id (ascending), its last group and when it was last in it.
        self._r_track = np.empty(0, dtype=np.int64)
        self._r_group = np.empty(0, dtype=np.int64)
        self._r_seen = np.empty(0)

    def update(self, t: float, track_id: ArrayLike, pos: ArrayLike, vel: ArrayLike, *,
               vel_std_mps: ArrayLike | None = None) -> GroupUpdate:
        """Group the tracks of one scan at time ``t`` (s, Unix; never decreasing).

        ``track_id`` (n,) int64, unique; ``pos`` (n, 3) ENU m; ``vel`` (n, 3) ENU m/s.
        Give every track in view, coasting ones included. ``vel_std_mps`` (n,):
        each track's 1-σ velocity uncertainty per axis (m/s), see
        ``velocity_std_mps``; give it for tracker output, whose velocities inside a
        swarm are poor (tracks swap drones), or members fall out of their group.
        """
        ids, p, v, vstd = self._check(t, track_id, pos, vel, vel_std_mps)
        t = float(t)
        order = np.argsort(ids, kind="stable")  # canonical: the result ignores input order
        ids, p, v = ids[order], p[order], v[order]
        if vstd is not None:
            vstd = vstd[order]
        prev = self._previous_group(ids)
        comp, size = self._components(p, v, vstd, prev)
        match = self._match(comp, size, prev)
        group = match.comp_gid[comp]
        events, merged_from, merged_into = self._advance(t, match, size)
        self._remember(t, ids, group, merged_from, merged_into)
        self.t = t
        shown = self._g_id[self._g_shown]
        public = np.where(np.isin(group, shown), group, -1)
        out = np.empty(ids.shape[0], dtype=np.int64)
        out[order] = public
        return GroupUpdate(t=t, group=out, groups=_table(ids, p, v, public), events=events)

    def update_tracks(self, t: float, tracks: Tracks) -> GroupUpdate:
        """``update`` with a tracker snapshot: its confirmed and coasting tracks, with the
        velocity uncertainty of their covariances. ``group`` is aligned with ``tracks``
        (-1 for tentative tracks)."""
        use = np.flatnonzero(tracks.status != TrackStatus.TENTATIVE)
        x = tracks.x[use]
        result = self.update(t, tracks.id[use], x[:, :3], x[:, 3:6],
                             vel_std_mps=velocity_std_mps(tracks.P[use]))
        group = np.full(len(tracks), -1, dtype=np.int64)
        group[use] = result.group
        return GroupUpdate(t=result.t, group=group, groups=result.groups, events=result.events)

    @property
    def ids_issued(self) -> int:
        """Group ids handed out over the tracker's life, shown or not."""
        return self._next_id - 1

    # ------------------------------------------------------------------ steps

    def _check(self, t: float, track_id: ArrayLike, pos: ArrayLike, vel: ArrayLike,
               vel_std: ArrayLike | None) -> tuple[I64, F64, F64, F64 | None]:
        if not math.isfinite(t):
            raise InputError(f"time {t!r} is not finite", field="t", fix="give Unix seconds")
        if self.t is not None and t < self.t:
            raise GroupOrderError(f"update at t={t!r} is older than the group tracker's time "
                                  f"{self.t!r}; give scans in time order")
        ids_in = np.asarray(track_id).reshape(-1)
        if ids_in.shape[0] and not np.issubdtype(ids_in.dtype, np.integer):
            raise InputError(f"track ids have dtype {ids_in.dtype}", field="track_id",
                             fix="pass track ids as int64")
        ids = ids_in.astype(np.int64)
        n = ids.shape[0]
        p, v = np.asarray(pos, dtype=np.float64), np.asarray(vel, dtype=np.float64)
        if n == 0 and p.size == 0 and v.size == 0:
            p, v = np.empty((0, 3)), np.empty((0, 3))
        if p.shape != (n, 3) or v.shape != (n, 3):
            raise InputError(f"{n} track ids but positions {p.shape} and velocities {v.shape}",
                             field="pos", fix="give (n, 3) ENU positions and velocities")
        if not (np.all(np.isfinite(p)) and np.all(np.isfinite(v))):
            raise InputError("positions or velocities include NaN or infinity", field="pos",
                             fix="leave those tracks out")
        if n > 1 and np.any(np.diff(np.sort(ids)) == 0):
            raise InputError("a track id appears twice", field="track_id",
                             fix="give each track one row per scan")
        vstd = None
        if vel_std is not None:
            vstd = np.asarray(vel_std, dtype=np.float64).reshape(-1)
            if vstd.shape != (n,) or not np.all(np.isfinite(vstd) & (vstd >= 0.0)):
                raise InputError("vel_std_mps must be (n,) finite and ≥ 0", field="vel_std_mps",
                                 fix="give one 1-σ velocity uncertainty per track, m/s")
        return ids, p, v, vstd

    def _previous_group(self, ids: I64) -> I64:
        """The group each track (ids ascending) was last in within ``hold_s``, else -1."""
        k = np.searchsorted(self._r_track, ids)
        found = k < self._r_track.shape[0]
        found[found] = self._r_track[k[found]] == ids[found]
        prev = np.full(ids.shape[0], -1, dtype=np.int64)
        prev[found] = self._r_group[k[found]]
        return prev

    def _components(self, p: F64, v: F64, vstd: F64 | None, prev: I64) -> tuple[IntP, IntP]:
        """Component of each track (numbered by their smallest track id) and sizes."""
        n = p.shape[0]
        if n == 0:
            return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
        cfg = self.config
        pairs = cKDTree(p).query_pairs(cfg.keep_distance_m, output_type="ndarray")
        i, j = pairs[:, 0].astype(np.intp), pairs[:, 1].astype(np.intp)
        d = np.linalg.norm(p[i] - p[j], axis=1)
        dv = np.linalg.norm(v[i] - v[j], axis=1)
        same = (prev[i] == prev[j]) & (prev[i] >= 0)
        d_max = np.where(same, cfg.keep_distance_m, cfg.join_distance_m)
        v_max = np.where(same, cfg.keep_velocity_mps, cfg.join_velocity_mps)
        if vstd is not None:
            v_max = np.sqrt(v_max**2 + cfg.velocity_sigmas**2 * (vstd[i] ** 2 + vstd[j] ** 2))
        ok = (d <= d_max) & (dv <= v_max)
        graph = sp.csr_array((np.ones(int(ok.sum())), (i[ok], j[ok])), shape=(n, n))
        _, labels = connected_components(graph, directed=False)
        # Tracks come sorted by id, so numbering components by first appearance numbers
        # them by smallest member id: the same whatever order scipy finds them in.
        _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
        rank = np.empty(first.shape[0], dtype=np.intp)
        rank[np.argsort(first)] = np.arange(first.shape[0])
        comp = rank[inverse]
        return comp, np.bincount(comp)

    def _match(self, comp: IntP, size: IntP, prev: I64) -> _Match:
        """Give each component (two or more tracks) the id of a known group, or a new one.

        A component and a known group share an edge when at least half of the smaller
        of the two is shared (the group's size counts its remembered members). Edges
        are taken greedily: shown groups first (a known object is never renamed after
        one not yet shown), then most shared members, then older group, then smaller
        component number. So a group keeps its id for its largest part, and a merged
        component keeps the id of its largest share. The greedy matching is found in
        rounds of mutual bests, all edges at once.
        """
        n_comp, n_known = size.shape[0], self._g_id.shape[0]
        width = max(n_known, 1)
        candidate = size >= 2
        shared = candidate[comp] & (prev >= 0)
        keys, overlap = np.unique(
            comp[shared].astype(np.int64) * width + np.searchsorted(self._g_id, prev[shared]),
            return_counts=True)
        ck, gk = (keys // width).astype(np.intp), (keys % width).astype(np.intp)
        g_size = np.bincount(np.searchsorted(self._g_id, self._r_group), minlength=n_known)
        keep = 2 * overlap >= np.minimum(size[ck], g_size[gk])
        ck, gk, overlap = ck[keep], gk[keep], overlap[keep]
        e = ck.shape[0]
        best_first = np.lexsort((ck, self._g_id[gk], -overlap, ~self._g_shown[gk]))
        ck, gk = ck[best_first], gk[best_first]  # edge k now has rank k
        rank = np.arange(e)
        comp_gid = np.full(n_comp, -1, dtype=np.int64)
        taken = np.zeros(n_known, dtype=bool)
        c_taken = np.zeros(n_comp, dtype=bool)
        alive = np.ones(e, dtype=bool)
        while alive.any():  # each round takes at least the best edge left
            best_c = np.full(n_comp, e, dtype=np.intp)
            best_g = np.full(n_known, e, dtype=np.intp)
            np.minimum.at(best_c, ck[alive], rank[alive])
            np.minimum.at(best_g, gk[alive], rank[alive])
            win = alive & (best_c[ck] == rank) & (best_g[gk] == rank)
            comp_gid[ck[win]] = self._g_id[gk[win]]
            c_taken[ck[win]] = True
            taken[gk[win]] = True
            alive &= ~c_taken[ck] & ~taken[gk]
        fresh = np.flatnonzero(~c_taken & (size >= self.config.min_members))
        comp_gid[fresh] = self._next_id + np.arange(fresh.shape[0], dtype=np.int64)
        self._next_id += int(fresh.shape[0])
        # A new component's parent: the shown group it shares most with (its best edge).
        parent = np.full(n_comp, -1, dtype=np.int64)
        from_shown = self._g_shown[gk]
        first_edge = np.unique(ck[from_shown], return_index=True)
        parent[first_edge[0]] = self._g_id[gk[from_shown][first_edge[1]]]
        return _Match(comp_gid=comp_gid, edge_comp=ck, edge_group=gk, taken=taken,
                      fresh=comp_gid[fresh], fresh_parent=parent[fresh])

    def _advance(self, t: float, m: _Match, size: IntP
                 ) -> tuple[tuple[GroupEvent, ...], I64, I64]:
        """Bring the known groups to time ``t``. Returns the events this causes, and the
        groups absorbed into others (ascending) with the id of the group each went into."""
        cfg = self.config
        in_edges = np.zeros(self._g_id.shape[0], dtype=bool)
        in_edges[m.edge_group] = True
        absorbed = in_edges & ~m.taken  # their members are in another group's component
        gone = ~in_edges & ~m.taken & (~self._g_shown | (t - self._g_seen > cfg.hold_s))
        # Where each absorbed group went: the component of its best edge.
        into = np.full(self._g_id.shape[0], -1, dtype=np.int64)
        edge_into = m.comp_gid[m.edge_comp]
        first_g, first_e = np.unique(m.edge_group, return_index=True)
        into[first_g] = edge_into[first_e]
        merged_from, merged_into = self._g_id[absorbed], into[absorbed]

        events: list[GroupEvent] = []
        merged = absorbed & self._g_shown
        for g in np.unique(into[merged]):  # over groups that took others in: a handful
            ended = np.sort(self._g_id[merged & (into == g)])
            events.append(GroupEvent(t, "merge", int(g), (int(g), *map(int, ended)), (int(g),),
                                     t))
        dissolved = gone & self._g_shown
        events.extend(GroupEvent(t, "dissolved", int(g), (int(g),), (), float(seen))
                      for g, seen in zip(self._g_id[dissolved], self._g_seen[dissolved],
                                         strict=True))

        counts = np.zeros(m.comp_gid.shape[0], dtype=np.int64)
        named = m.comp_gid >= 0
        counts[named] = size[named]
        seen_gid, seen_count = m.comp_gid[named], counts[named]
        keep = ~(absorbed | gone)
        g_id = np.concatenate([self._g_id[keep], m.fresh])
        g_first = np.concatenate([self._g_first[keep], np.full(m.fresh.shape[0], t)])
        g_seen = np.concatenate([self._g_seen[keep], np.full(m.fresh.shape[0], t)])
        g_shown = np.concatenate([self._g_shown[keep], np.zeros(m.fresh.shape[0], dtype=bool)])
        g_parent = np.concatenate([self._g_parent[keep], m.fresh_parent])
        order = np.argsort(g_id)
        g_id, g_first, g_seen = g_id[order], g_first[order], g_seen[order]
        g_shown, g_parent = g_shown[order], g_parent[order]
        k = np.searchsorted(g_id, seen_gid)
        g_seen[k] = t
        count = np.zeros(g_id.shape[0], dtype=np.int64)
        count[k] = seen_count
        show = ~g_shown & (count >= cfg.min_members) & (t - g_first >= cfg.confirm_s)
        g_shown |= show
        self._g_id, self._g_first, self._g_seen = g_id, g_first, g_seen
        self._g_shown, self._g_parent = g_shown, g_parent

        split = show & (g_parent >= 0)
        for g in np.unique(g_parent[split]):  # over groups that split: a handful
            part = split & (g_parent == g)
            events.append(GroupEvent(t, "split", int(g), (int(g),),
                                     (int(g), *map(int, g_id[part])), float(g_first[part].min())))
        formed = show & (g_parent < 0)
        events.extend(GroupEvent(t, "formed", int(g), (), (int(g),), float(first))
                      for g, first in zip(g_id[formed], g_first[formed], strict=True))
        order_kind = {"split": 0, "merge": 1, "formed": 2, "dissolved": 3}
        events.sort(key=lambda ev: (order_kind[ev.kind], ev.group_id))
        return tuple(events), merged_from, merged_into

    def _remember(self, t: float, ids: I64, group: I64, merged_from: I64,
                  merged_into: I64) -> None:
        """Carry the roster over to the next scan."""
        r_group = self._r_group.copy()
        k = np.searchsorted(merged_from, r_group)
        hit = k < merged_from.shape[0]
        hit[hit] = merged_from[k[hit]] == r_group[hit]
        # A merged-away group's remembered members now belong to the group that took it.
        r_group[hit] = merged_into[k[hit]]
        grouped = group >= 0
        old = ~np.isin(self._r_track, ids[grouped]) & (t - self._r_seen <= self.config.hold_s) \
            & np.isin(r_group, self._g_id)
        r_track = np.concatenate([self._r_track[old], ids[grouped]])
        r_group = np.concatenate([r_group[old], group[grouped]])
        r_seen = np.concatenate([self._r_seen[old], np.full(int(grouped.sum()), t)])
        order = np.argsort(r_track, kind="stable")
        self._r_track, self._r_group, self._r_seen = r_track[order], r_group[order], r_seen[order]


def _table(ids: I64, p: F64, v: F64, group: I64) -> GroupTable:
    """The groups table from tracks (ids ascending) and their group ids (-1: none)."""
    grouped = group >= 0
    if not grouped.any():
        return GroupTable.empty()
    gid, inv = np.unique(group[grouped], return_inverse=True)
    count = np.bincount(inv)
    pg, vg = p[grouped], v[grouped]
    centroid = np.stack([np.bincount(inv, pg[:, a]) for a in range(3)], axis=1) / count[:, None]
    velocity = np.stack([np.bincount(inv, vg[:, a]) for a in range(3)], axis=1) / count[:, None]
    extent = np.zeros(gid.shape[0])
    np.maximum.at(extent, inv, np.linalg.norm(pg - centroid[inv], axis=1))
    members = ids[grouped][np.lexsort((ids[grouped], inv))]
    start = np.concatenate([[0], np.cumsum(count)]).astype(np.int64)
    return GroupTable(id=gid.astype(np.int64), count=count.astype(np.int64), centroid=centroid,
                      extent_m=extent, velocity=velocity, member_ids=members, member_start=start)


def velocity_std_mps(P: ArrayLike) -> F64:
    """Per-axis 1-σ velocity uncertainty (n,) m/s, √(trace of the velocity block / 3),
    from track covariances ``P`` (n, 6, 6) in ENU m and m/s."""
    cov = np.asarray(P, dtype=np.float64).reshape(-1, 6, 6)
    return np.asarray(np.sqrt(np.trace(cov[:, 3:6, 3:6], axis1=1, axis2=2) / 3.0))
