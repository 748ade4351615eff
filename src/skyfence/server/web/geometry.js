// Small spherical helpers for the map: circles as polygons, hulls of swarms.
// Positions are [lon_deg, lat_deg]; distances in metres on a sphere (R = 6371 km),
// good to well under a metre at the few kilometres a zone or a swarm spans.

const R_M = 6371008.8;
const DEG = Math.PI / 180;

/** The point `distance_m` from [lon, lat] on `bearing_deg` (clockwise from north). */
export function destination([lon, lat], distance_m, bearing_deg) {
    const d = distance_m / R_M;
    const b = bearing_deg * DEG;
    const p1 = lat * DEG;
    const l1 = lon * DEG;
    const p2 = Math.asin(Math.sin(p1) * Math.cos(d) + Math.cos(p1) * Math.sin(d) * Math.cos(b));
    const l2 = l1 + Math.atan2(Math.sin(b) * Math.sin(d) * Math.cos(p1),
        Math.cos(d) - Math.sin(p1) * Math.sin(p2));
    return [((l2 / DEG + 540) % 360) - 180, p2 / DEG];
}

/** A closed ring of `n` points, anticlockwise (RFC 7946), around a centre. */
export function circleRing(centre, radius_m, n = 72) {
    const ring = [];
    for (let k = 0; k <= n; k++) {
        ring.push(destination(centre, radius_m, -360 * (k % n) / n));
    }
    return ring;
}

/** Convex hull (Andrew's monotone chain) of [lon, lat] points, as a closed ring. */
export function convexHull(points) {
    const pts = points.slice().sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    if (pts.length < 3) return null;
    const cross = (o, a, b) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
    const lower = [];
    for (const p of pts) {
        while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], p) <= 0) lower.pop();
        lower.push(p);
    }
    const upper = [];
    for (let i = pts.length - 1; i >= 0; i--) {
        const p = pts[i];
        while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], p) <= 0) upper.pop();
        upper.push(p);
    }
    const hull = lower.slice(0, -1).concat(upper.slice(0, -1));
    if (hull.length < 3) return null;
    hull.push(hull[0]);
    return hull;
}

/** A hull grown by `margin_m`: each corner pushed away from the centre (a rounded
 * outline is not worth its cost for a shape that moves every second). */
export function grow(ring, centre, margin_m) {
    const cosLat = Math.cos(centre[1] * DEG);
    return ring.map(([lon, lat]) => {
        const dx = (lon - centre[0]) * cosLat;
        const dy = lat - centre[1];
        const bearing = Math.atan2(dx, dy) / DEG;
        const moved = destination([lon, lat], margin_m, bearing);
        return Number.isFinite(moved[0]) ? moved : [lon, lat];
    });
}

/** [[west, south], [east, north]] of a list of [lon, lat], or null. */
export function bounds(points) {
    if (!points.length) return null;
    let w = Infinity;
    let s = Infinity;
    let e = -Infinity;
    let n = -Infinity;
    for (const [lon, lat] of points) {
        if (!Number.isFinite(lon) || !Number.isFinite(lat)) continue;
        w = Math.min(w, lon);
        e = Math.max(e, lon);
        s = Math.min(s, lat);
        n = Math.max(n, lat);
    }
    return Number.isFinite(w) ? [[w, s], [e, n]] : null;
}
