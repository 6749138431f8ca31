"""Spectral relevance analysis (SpRAy, Lapuschkin et al. 2019): group one class's maps
by where they put the evidence, with numpy, scipy and scikit-learn only.

The steps, each a short function below:

1. ``normalised``: every map at one small grid (area averaging), negatives cut,
   divided by its sum, so a map is "where its mass sits" whatever its scale;
2. ``neighbour_graph``: a sparse k-nearest-neighbour graph over the maps
   (scikit-learn), symmetric, never a dense n x n matrix: 100,000 maps fit;
3. ``spectrum``: the smallest eigenvalues of the graph's normalised Laplacian and
   their eigenvectors (ARPACK on the sparse matrix);
4. ``eigengap``: the number of clusters is where the gap between consecutive
   eigenvalues is largest (a graph of c well-separated groups has c eigenvalues
   near 0, then a jump);
5. k-means on the row-normalised spectral embedding (Ng, Jordan and Weiss 2001);
6. per cluster: its mean map, ``region`` (the compact box around the mean map's
   peak that holds most of its mass) and ``consistency`` (the share of the
   members' mass inside that box); photos far from their cluster are outliers.

Whether a cluster is a shortcut needs the model and the photos (removing the
region): that is ``audit.py``'s part, not this module's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse.csgraph import connected_components

GRID = 8  # maps are compared at (at most) this many cells a side: detail beyond it is noise for grouping
NEIGHBOURS = 10  # k of the nearest-neighbour graph (fewer when the class has fewer maps)
SEARCH_DIMS = 12  # principal directions the neighbour search uses in large classes (see _principal)
LARGE_CLASS = 5000  # from this many maps on, neighbours are searched in SEARCH_DIMS dimensions
MAX_CLUSTERS = 8  # the eigengap is searched among this many clusters
MIN_MAPS_TO_SPLIT = 6  # fewer maps than this form one cluster: no spectrum to speak of
REGION_MASS = 0.5  # the region holds at least this share of the mean map's mass
OUTLIER_SPREAD = 3.0  # an outlier lies beyond median + this many scaled MADs of its cluster's distances


@dataclass(frozen=True)
class Region:
    """A box on the map's grid, end-exclusive cells, and as fractions of the image."""

    row0: int
    col0: int
    row1: int
    col1: int
    rows: int  # the grid's size
    cols: int

    @property
    def box(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) as fractions of the image's width and height."""
        return (self.col0 / self.cols, self.row0 / self.rows, self.col1 / self.cols, self.row1 / self.rows)

    @property
    def area(self) -> float:
        """The share of the image the box covers."""
        return (self.row1 - self.row0) * (self.col1 - self.col0) / (self.rows * self.cols)

    def mask(self) -> np.ndarray:
        inside = np.zeros((self.rows, self.cols), bool)
        inside[self.row0:self.row1, self.col0:self.col1] = True
        return inside


@dataclass(frozen=True)
class Cluster:
    members: np.ndarray  # indices into the maps given, nearest the cluster's centre first
    mean_map: np.ndarray  # (GRID-sized) mean of the members' normalised maps, sums to 1
    region: Region
    consistency: float  # mean over members of their mass inside the region (0..1)


@dataclass(frozen=True)
class Spray:
    labels: np.ndarray  # (n,) cluster of each map, -1 for a map with no positive evidence
    clusters: list[Cluster]  # largest first
    eigenvalues: np.ndarray  # the smallest eigenvalues of the normalised Laplacian, ascending
    count: int  # clusters chosen by the eigengap
    embedding: np.ndarray  # (n, 2) spectral coordinates for a scatter plot (zeros where there is none)
    distances: np.ndarray  # (n,) each map's distance to its cluster's mean (normalised maps)
    outliers: np.ndarray  # indices of maps far from every cluster's mean
    empty: np.ndarray  # indices of maps without positive evidence (all <= 0)


# --- 1. maps on one small grid ---------------------------------------------------


def _area_weights(size: int, cells: int) -> np.ndarray:
    """(cells, size): row i averages the input positions that cell i covers, with
    fractional weights at the edges, so every input position counts exactly once."""
    edges = np.linspace(0, size, cells + 1)
    starts, ends = np.arange(size), np.arange(size) + 1
    overlap = np.clip(np.minimum(ends[None], edges[1:, None]) - np.maximum(starts[None], edges[:-1, None]), 0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def downsampled(maps: np.ndarray, grid: int = GRID) -> np.ndarray:
    """(n, h, w) -> (n, min(h, grid), min(w, grid)) by area averaging (two small
    matrix products for all maps at once: no Python loop over maps)."""
    maps = np.asarray(maps, np.float32)
    if maps.ndim != 3:
        raise ValueError(f"Maps must be an (n, height, width) array, not of shape {maps.shape}.")
    n, h, w = maps.shape
    rows, cols = min(h, grid), min(w, grid)
    if (rows, cols) == (h, w):
        return maps
    left = _area_weights(h, rows).astype(np.float32)
    right = _area_weights(w, cols).astype(np.float32)
    return np.einsum("rh,nhw,cw->nrc", left, maps, right, optimize=True)


def normalised(maps: np.ndarray, grid: int = GRID) -> tuple[np.ndarray, np.ndarray]:
    """(normalised maps summing to 1, which maps were empty). A map with no positive
    evidence stays all zeros and is marked empty (it belongs to no cluster)."""
    small = np.nan_to_num(downsampled(maps, grid), nan=0.0, posinf=0.0, neginf=0.0)
    small = np.clip(small, 0, None)
    mass = small.sum(axis=(1, 2))
    empty = ~(mass > 0)
    out = np.zeros_like(small)
    out[~empty] = small[~empty] / mass[~empty, None, None]
    return out, empty


# --- 2.-4. graph, spectrum, eigengap -----------------------------------------------


def neighbour_graph(vectors: np.ndarray, neighbours: int = NEIGHBOURS):
    """A symmetric sparse affinity matrix: an edge between each map and its k nearest
    (Euclidean on the normalised maps), weighted by a self-tuning heat kernel
    exp(-d^2 / (s_i s_j)), s_i the distance to i's k-th neighbour (Zelnik-Manor and
    Perona 2004), so dense and sparse parts of the class are treated alike."""
    from scipy import sparse
    from sklearn.neighbors import NearestNeighbors

    n = len(vectors)
    k = max(1, min(neighbours, n - 1))
    vectors = _principal(vectors)
    distances, indices = NearestNeighbors(n_neighbors=k + 1).fit(vectors).kneighbors(vectors)
    distances, indices = distances[:, 1:], indices[:, 1:]  # drop each map itself
    scale = distances[:, -1]
    positive = scale[scale > 0]
    floor = positive.min() if positive.size else 1.0
    scale = np.maximum(scale, floor * 1e-3 if positive.size else 1.0)  # identical maps: a tiny, nonzero scale
    rows = np.repeat(np.arange(n), k)
    weights = np.exp(-(distances.ravel() ** 2) / (scale[rows] * scale[indices.ravel()]))
    affinity = sparse.csr_matrix((weights, (rows, indices.ravel())), shape=(n, n))
    return affinity.maximum(affinity.T).tocsr()


def _principal(vectors: np.ndarray, dims: int = SEARCH_DIMS) -> np.ndarray:
    """Large classes: the maps in their first ``dims`` principal directions, where a
    k-d tree finds neighbours fast (on 49 dimensions it degrades towards brute force:
    36 s for 100,000 maps here). Distances change by the little variance left out."""
    if len(vectors) < LARGE_CLASS or vectors.shape[1] <= dims:
        return vectors
    centred = vectors - vectors.mean(axis=0)
    _, directions = np.linalg.eigh(centred.T @ centred)  # (d, d): small whatever n is
    return centred @ directions[:, ::-1][:, :dims]


def spectrum(affinity, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(eigenvalues ascending, eigenvectors as columns) of the normalised Laplacian
    I - D^-1/2 A D^-1/2, the ``count`` smallest. Computed as the largest of
    D^-1/2 A D^-1/2 + I (eigenvalues 0..2, the wanted end separated from 0), which
    ARPACK finds quickly on a sparse matrix."""
    from scipy import sparse
    from scipy.sparse.linalg import eigsh

    n = affinity.shape[0]
    degree = np.asarray(affinity.sum(axis=1)).ravel()
    inverse_root = sparse.diags(1.0 / np.sqrt(np.maximum(degree, 1e-12)))
    walk = inverse_root @ affinity @ inverse_root
    count = min(count, n - 1)
    if n <= 300:  # small classes: a dense solve is exact and instant
        values, vectors = np.linalg.eigh(walk.toarray())
        order = np.argsort(values)[::-1][:count]
        values, vectors = values[order], vectors[:, order]
    else:
        shifted = walk + sparse.identity(n, format="csr")
        # A seeded random start: the top eigenvector sqrt(degree) as start hides repeated
        # eigenvalues (one per connected part of the graph) from Lanczos.
        start = np.random.default_rng(0).uniform(0.5, 1.5, n)
        # tol 1e-4 found the same eigenvalues as 1e-6 to 1e-6 on 100,000 maps, in 15 s instead of 35-41 s.
        values, vectors = eigsh(shifted, k=count, which="LA", v0=start / np.linalg.norm(start), tol=1e-4,
                                ncv=max(2 * count + 1, 40))
        values = values - 1.0
        order = np.argsort(values)[::-1]
        values, vectors = values[order], vectors[:, order]
    return np.clip(1.0 - values, 0.0, 2.0), vectors


def eigengap(eigenvalues: np.ndarray, max_clusters: int = MAX_CLUSTERS) -> int:
    """The number of clusters: the k (1..max_clusters) after which the gap between
    consecutive Laplacian eigenvalues is largest."""
    values = np.asarray(eigenvalues[:max_clusters + 1], np.float64)
    if len(values) < 2:
        return 1
    gaps = np.diff(values)
    return int(np.argmax(gaps)) + 1


# --- 5.-6. clusters and what each says ----------------------------------------------


def region_of(mean_map: np.ndarray, share: float = REGION_MASS) -> Region:
    """The compact box around the mean map's peak holding at least ``share`` of its
    mass: start at the peak cell and add, one at a time, the neighbouring row or
    column that brings the most mass per cell, until the box holds enough."""
    rows, cols = mean_map.shape
    total = float(mean_map.sum())
    peak = np.unravel_index(int(np.argmax(mean_map)), mean_map.shape)
    r0, c0, r1, c1 = int(peak[0]), int(peak[1]), int(peak[0]) + 1, int(peak[1]) + 1
    while total > 0 and mean_map[r0:r1, c0:c1].sum() < share * total - 1e-9:
        options = []
        if r0 > 0:
            options.append((mean_map[r0 - 1, c0:c1].sum() / (c1 - c0), (r0 - 1, c0, r1, c1)))
        if r1 < rows:
            options.append((mean_map[r1, c0:c1].sum() / (c1 - c0), (r0, c0, r1 + 1, c1)))
        if c0 > 0:
            options.append((mean_map[r0:r1, c0 - 1].sum() / (r1 - r0), (r0, c0 - 1, r1, c1)))
        if c1 < cols:
            options.append((mean_map[r0:r1, c1].sum() / (r1 - r0), (r0, c0, r1, c1 + 1)))
        if not options:
            break
        r0, c0, r1, c1 = max(options, key=lambda option: option[0])[1]
    return Region(r0, c0, r1, c1, rows, cols)


def _cluster(vectors: np.ndarray, members: np.ndarray, shape) -> tuple[Cluster, np.ndarray]:
    """A cluster from its members' normalised maps, and each member's distance to its mean."""
    mean = vectors[members].mean(axis=0)
    distances = np.linalg.norm(vectors[members] - mean, axis=1)
    order = np.argsort(distances, kind="stable")
    mean_map = mean.reshape(shape)
    region = region_of(mean_map)
    inside = region.mask().ravel()
    consistency = float(vectors[members][:, inside].sum(axis=1).mean())
    return Cluster(members[order], mean_map, region, consistency), distances


def _kmeans(embedding: np.ndarray, count: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    if count == 1:
        return np.zeros(len(embedding), int)
    lengths = np.linalg.norm(embedding, axis=1, keepdims=True)
    rows = embedding / np.maximum(lengths, 1e-12)
    return KMeans(n_clusters=count, n_init=4, random_state=0).fit_predict(rows)


def spray(maps: np.ndarray, *, grid: int = GRID, neighbours: int = NEIGHBOURS,
          max_clusters: int = MAX_CLUSTERS, clusters: int | None = None) -> Spray:
    """SpRAy over one class's maps, (n, h, w) at any resolution.
    ``clusters``: force a number instead of the eigengap's."""
    normal, empty = normalised(maps, grid)
    n = len(normal)
    shape = normal.shape[1:]
    vectors = normal.reshape(n, -1)
    usable = np.flatnonzero(~empty)
    labels = np.full(n, -1, int)
    embedding = np.zeros((n, 2), np.float32)
    distances = np.zeros(n, np.float32)
    eigenvalues = np.zeros(0)
    if usable.size == 0:
        return Spray(labels, [], eigenvalues, 0, embedding, distances, np.zeros(0, int), np.flatnonzero(empty))
    if usable.size < MIN_MAPS_TO_SPLIT:
        count, assigned = 1, np.zeros(usable.size, int)
    else:
        affinity = neighbour_graph(vectors[usable], neighbours)
        # One eigenvalue beyond the last gap searched: ARPACK's last one converges least well.
        eigenvalues, eigenvectors = spectrum(affinity, max(max_clusters + 2, 3))
        count = clusters if clusters is not None else eigengap(eigenvalues, max_clusters)
        count = max(1, min(int(count), usable.size))
        embedding[usable] = eigenvectors[:, 1:3] if eigenvectors.shape[1] >= 3 else 0.0
        parts, part_of = connected_components(affinity, directed=False)
        if clusters is None and 1 < parts <= max_clusters:
            # Separate parts of the graph are separate clusters. Their eigenvalue 0 is
            # repeated, and Lanczos (ARPACK) can miss copies of a repeated eigenvalue
            # (6,000 maps in 3 parts showed 2 zeros), so the parts are counted directly.
            count, assigned = parts, part_of
        else:
            assigned = _kmeans(eigenvectors[:, :max(count, 1)], count)
    found = []
    for c in np.unique(assigned):
        members = usable[assigned == c]
        cluster, member_distances = _cluster(vectors, members, shape)
        distances[members] = member_distances
        found.append(cluster)
    found.sort(key=lambda cluster: (-len(cluster.members), int(cluster.members.min())))
    for number, cluster in enumerate(found):
        labels[cluster.members] = number
    return Spray(labels, found, eigenvalues, count, embedding, distances,
                 _outliers(found, distances), np.flatnonzero(empty))


def _outliers(clusters: list[Cluster], distances: np.ndarray) -> np.ndarray:
    """Members whose distance to their cluster's mean lies beyond the cluster's median
    + OUTLIER_SPREAD scaled median absolute deviations (robust: the outliers
    themselves do not widen the yardstick). Clusters of fewer than 5 have none."""
    found = []
    for cluster in clusters:
        if len(cluster.members) < 5:
            continue
        d = distances[cluster.members]
        median = np.median(d)
        spread = 1.4826 * np.median(np.abs(d - median))
        limit = median + OUTLIER_SPREAD * max(spread, 0.05 * max(median, 1e-6))
        found.extend(cluster.members[d > limit].tolist())
    return np.array(sorted(found), int)
