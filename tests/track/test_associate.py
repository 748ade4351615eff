import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from skyfence.track.associate import candidate_pairs, gnn_assign


@settings(max_examples=60, deadline=None, derandomize=True)
@given(seed=st.integers(0, 100_000), n=st.integers(0, 40), m=st.integers(0, 40),
       spread=st.sampled_from([50.0, 500.0, 5000.0]))
def test_candidate_pairs_match_brute_force(seed: int, n: int, m: int, spread: float) -> None:
    rng = np.random.default_rng(seed)
    tracks = rng.uniform(-spread, spread, (n, 3))
    dets = rng.uniform(-spread, spread, (m, 3))
    radius = rng.uniform(10, 400, n)
    ti, dj = candidate_pairs(tracks, radius, dets)
    d = np.linalg.norm(tracks[:, None] - dets[None], axis=2) if n and m else np.zeros((n, m))
    want = sorted(zip(*np.nonzero(d <= radius[:, None]), strict=True))
    assert list(zip(ti.tolist(), dj.tolist(), strict=True)) == [(int(a), int(b)) for a, b in want]


def _brute_force(n: int, m: int, pairs: dict[tuple[int, int], float]) -> float:
    best = 0.0
    edges = list(pairs)
    for r in range(1, min(n, m) + 1):
        for combo in itertools.combinations(edges, r):
            rows = {e[0] for e in combo}
            cols = {e[1] for e in combo}
            if len(rows) == r and len(cols) == r:
                best = min(best, sum(pairs[e] for e in combo))
    return best


@settings(max_examples=80, deadline=None, derandomize=True)
@given(seed=st.integers(0, 100_000), n=st.integers(1, 5), m=st.integers(1, 5),
       density=st.floats(0.1, 1.0))
def test_gnn_assign_is_optimal(seed: int, n: int, m: int, density: float) -> None:
    rng = np.random.default_rng(seed)
    mask = rng.random((n, m)) < density
    ti, dj = np.nonzero(mask)
    cost = rng.uniform(-20, 5, ti.size)
    at, ad = gnn_assign(n, m, ti.astype(np.intp), dj.astype(np.intp), cost)
    assert len(set(at.tolist())) == at.size and len(set(ad.tolist())) == ad.size
    pairs = {(int(a), int(b)): float(c) for a, b, c in zip(ti, dj, cost, strict=True)}
    got = sum(pairs[(int(a), int(b))] for a, b in zip(at, ad, strict=True))
    assert abs(got - _brute_force(n, m, pairs)) < 1e-9


def test_candidate_cap_keeps_the_nearest() -> None:
    rng = np.random.default_rng(3)
    dets = rng.uniform(-100, 100, (300, 3))
    tracks = np.zeros((1, 3))
    ti, dj = candidate_pairs(tracks, np.array([1e6]), dets, max_per_track=10)
    assert ti.size == 10
    d = np.linalg.norm(dets, axis=1)
    assert set(dj.tolist()) == set(np.argsort(d)[:10].tolist())
