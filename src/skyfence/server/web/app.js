// skyfence web map: the node's picture (docs/API.md) on an offline MapLibre map.
//
// Everything it loads comes from the node: the page, vendor/ (MapLibre, milsymbol, the
// Inter font), basemap/ (Natural Earth), and the API. Tracks are drawn as dots by one
// WebGL layer fed typed arrays (dots.js): 10,000 tracks at 1 Hz cost one pass over the
// rows and one repaint a second, and no DOM per track. Zoomed in on fewer tracks, their
// symbols and labels come from a GeoJSON source fed only then, and only with the tracks
// near the view.

import * as maplibregl from './vendor/maplibre-gl/maplibre-gl.mjs';
import {Stream} from './stream.js';
import {AFFILIATION_COLOURS, AFFILIATIONS, CLASS_NAMES, PIXEL_RATIO, badge, courseLeader,
    dataUrl, sensorSymbol, trackSymbol} from './symbols.js';
import {bounds, circleRing, convexHull, destination, grow} from './geometry.js';
import {DotLayer, rgba} from './dots.js';

const API = 'api/v1'; // relative: the map works behind a path prefix too
const TRAIL_S = 60;
/** Most trail vertices drawn at once; beyond it trails are thinned (every k-th point). */
const TRAIL_BUDGET = 60000;
const KT_PER_MPS = 1.943844;
/** From this zoom on, tracks are drawn as symbols; below it, as dots. */
const ICON_ZOOM = 10;
/** ... and swarm members from this one (before, dots inside the swarm's outline). */
const MEMBER_ICON_ZOOM = 15;
/** With more tracks than this in view, tracks are dots at any zoom and trails are off:
 * thousands of overlapping symbols say nothing, and cost a software renderer dearly. */
const DENSE_TRACKS = 1500;

const RESTRICTION_COLOURS = {
    prohibited: '#ff4040',
    authorisation_required: '#ff9f1a',
    conditional: '#ffd43b',
    no_restriction: '#8da2b8',
};
const RESTRICTION_NAMES = {
    prohibited: 'Prohibited',
    authorisation_required: 'Authorisation required',
    conditional: 'Conditional',
    no_restriction: 'No restriction',
};
const SEVERITY_RANK = {info: 1, warning: 2, critical: 3};
const KIND_NAMES = {
    zone_breach: 'Zone breach',
    zone_breach_predicted: 'Breach predicted',
    site_threat: 'Site threat',
    swarm: 'Swarm',
    fast_low_flyer: 'Fast low flyer',
    spoof_suspect: 'Spoofing suspected',
    dark_drone: 'Dark drone',
    track_lost_in_zone: 'Track lost in zone',
};

// ------------------------------------------------------------------ state

const state = {
    t: null, // data time of the live picture (Unix s)
    seq: null,
    tracks: new Map(), // id -> track row (TRACK_FIELDS)
    groups: [],
    alerts: new Map(), // alert id -> active alert row
    trails: new Map(), // id -> {t: [], lon: [], lat: []}
    selected: null, // track id
    selectedRow: null, // the last row seen of the selected track
    mode: 'live', // live | replay
    replay: null, // {t, rows}
    historyRange: {t_min: null, t_max: null},
    zones: {type: 'FeatureCollection', features: []},
    sites: {type: 'FeatureCollection', features: []},
    sensors: [],
    coverageLoaded: false,
    connection: 'connecting',
    staticLoaded: false,
    noHistory: false,
    viewSet: false,
};
const stats = {
    messages: 0,
    updates: 0,
    snapshots: 0,
    lastHandleMs: 0, // applying one message to the state
    lastBuildMs: 0, // building the dots from the tracks
    dotBuilds: 0,
    symbolFeatures: 0, // tracks in the symbols' GeoJSON source (0 unless zoomed in)
};

const $ = (sel) => document.querySelector(sel);
const fmtTime = (t) => (t == null ? '--:--:--Z' : `${new Date(t * 1000).toISOString().slice(11, 19)}Z`);
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));
const num = (x, digits = 0) => (x == null || !Number.isFinite(x) ? '–' : x.toFixed(digits));

function flagsOf(row) {
    const f = row.flags;
    if (Array.isArray(f)) return f;
    return f ? String(f).split('|').filter(Boolean) : [];
}

function shortIdentity(identity) {
    if (!identity) return '';
    const i = identity.indexOf(':');
    return i >= 0 ? identity.slice(i + 1) : identity;
}

/** Highest severity of the active alerts, per track. */
function alertSeverityByTrack() {
    const out = new Map();
    for (const a of shownAlerts().values()) {
        if (a.track == null) continue;
        const prev = out.get(a.track);
        if (!prev || SEVERITY_RANK[a.severity] > SEVERITY_RANK[prev]) out.set(a.track, a.severity);
    }
    return out;
}

/**
 * Affiliation for the symbol frame (2525 standard identity), from what the node knows:
 * hostile — suspected of spoofing, or behind a critical alert;
 * suspect — a drone or fast low flyer with no cooperative identity;
 * neutral — a cooperative identity (ADS-B, Remote ID), or a bird;
 * unknown — anything else.
 */
function affiliation(row, severity) {
    const flags = flagsOf(row);
    if (flags.includes('spoof_suspect') || severity === 'critical') return 'hostile';
    if (row.identity) return 'neutral';
    const cls = row.class;
    if (cls === 'drone_multirotor' || cls === 'drone_fixed_wing' || cls === 'fast_low_flyer') return 'suspect';
    if (cls === 'bird') return 'neutral';
    return 'unknown';
}

/** A history point (``/history/at``) as a track row. */
function historyRow(p) {
    const ve = p.v_east_mps ?? 0;
    const vn = p.v_north_mps ?? 0;
    return {
        id: p.id, lat_deg: p.lat_deg, lon_deg: p.lon_deg, height_m: p.height_m,
        speed_mps: Math.hypot(ve, vn), course_deg: ((Math.atan2(ve, vn) * 180) / Math.PI + 360) % 360,
        climb_mps: p.v_up_mps, class: p.class, flags: flagsOf(p), identity: p.identity ?? '',
        group: p.group ?? -1,
        t: p.t, history: true,
    };
}

// ------------------------------------------------------------------ applying messages

function onMessage(msg) {
    const t0 = performance.now();
    stats.messages += 1;
    state.seq = msg.seq ?? state.seq;
    if (msg.type === 'snapshot') {
        stats.snapshots += 1;
        state.alerts = new Map((msg.alerts || []).map((a) => [a.alert, a]));
        state.trails.clear();
        state.tracks = new Map();
        applyPicture(msg.t, msg.tracks || [], msg.groups || []);
    } else if (msg.type === 'update') {
        stats.updates += 1;
        for (const e of msg.alerts || []) applyAlertEvent(e);
        for (const id of msg.removed || []) {
            state.trails.delete(id);
            state.tracks.delete(id);
        }
        applyPicture(msg.t, msg.tracks || [], msg.groups || []);
    } else if (msg.type === 'alert') {
        applyAlertEvent(msg.alert);
        invalidate('tracks', 'groups', 'ui');
    } else if (msg.type === 'zones') {
        loadZones();
    }
    stats.lastHandleMs = performance.now() - t0;
}

/** A snapshot's or an update's rows: an update carries only the tracks that changed
 * (a picture delta); the others stand as they were. */
function applyPicture(t, rows, groups) {
    if (t != null) state.t = t;
    const tracks = state.tracks;
    for (const r of rows) tracks.set(r.id, r);
    state.groups = groups;
    if (t != null) extendTrails(t, rows);
    if (state.selected != null && tracks.has(state.selected)) state.selectedRow = tracks.get(state.selected);
    if (!state.viewSet && state.staticLoaded && rows.length) fitInitial(rows);
    invalidate('tracks', 'trails', 'groups', 'ui');
}

function extendTrails(t, rows) {
    const cutoff = t - TRAIL_S;
    const trails = state.trails;
    for (const r of rows) {
        let tr = trails.get(r.id);
        if (!tr) {
            tr = {t: [], lon: [], lat: []};
            trails.set(r.id, tr);
        }
        const n = tr.t.length;
        if (n && tr.t[n - 1] >= t) continue;
        tr.t.push(t);
        tr.lon.push(r.lon_deg);
        tr.lat.push(r.lat_deg);
        if (tr.t[0] < cutoff) {
            let k = 0;
            while (k < tr.t.length && tr.t[k] < cutoff) k++;
            tr.t.splice(0, k);
            tr.lon.splice(0, k);
            tr.lat.splice(0, k);
        }
    }
    if (trails.size > state.tracks.size) {
        for (const id of trails.keys()) if (!state.tracks.has(id)) trails.delete(id);
    }
}

function applyAlertEvent(e) {
    foldAlertEvent(state.alerts, e);
}

/** One alert event into a map of alerts by id (the live book, or a replayed moment's). */
function foldAlertEvent(alerts, e) {
    if (!e || e.alert == null) return;
    if (e.event === 'cleared') {
        alerts.delete(e.alert);
        return;
    }
    const prev = alerts.get(e.alert) || {acknowledged_by: null, acknowledged_t: null, raised_t: e.t};
    const row = {
        ...prev,
        alert: e.alert, kind: e.kind, severity: e.severity, reason: e.reason, track: e.track,
        zone: e.zone, site: e.site, group: e.group, time_to_breach_s: e.time_to_breach_s,
        probability: e.probability, lat_deg: e.lat_deg, lon_deg: e.lon_deg, height_m: e.height_m,
        updated_t: e.t,
    };
    if (e.event === 'raised') row.raised_t = e.t;
    if (e.event === 'acknowledged') {
        row.acknowledged_by = e.by;
        row.acknowledged_t = e.t;
        // An acknowledgement is not news about the alert's numbers.
        row.updated_t = prev.updated_t ?? e.t;
        for (const k of ['time_to_breach_s', 'probability', 'reason', 'kind', 'severity']) {
            if (prev[k] !== undefined) row[k] = prev[k];
        }
    }
    alerts.set(e.alert, row);
}

/** The alerts shown: the live book, or in replay those standing at the replayed time. */
function shownAlerts() {
    return state.mode === 'replay' ? (state.replay?.alerts ?? new Map()) : state.alerts;
}

// ------------------------------------------------------------------ the map

await Promise.all([
    document.fonts.load('400 12px "Inter"'),
    document.fonts.load('600 12px "Inter"'),
]).catch(() => {});

const absolute = (path) => new URL(path, window.location.href).href;

const map = new maplibregl.Map({
    container: 'map',
    style: {
        version: 8,
        // No glyphs URL: MapLibre draws labels from the local fonts named in text-font
        // (declared in app.css from vendor/inter), so nothing is fetched from outside.
        sources: {
            land: {type: 'geojson', data: absolute('basemap/land.geojson'), tolerance: 0.6},
            borders: {type: 'geojson', data: absolute('basemap/borders.geojson')},
            countries: {type: 'geojson', data: absolute('basemap/countries.geojson')},
        },
        layers: [
            {id: 'water', type: 'background', paint: {'background-color': '#0b1a2c'}},
            {id: 'land', type: 'fill', source: 'land', paint: {'fill-color': '#141b24'}},
            {id: 'coast', type: 'line', source: 'land', paint: {'line-color': '#2d4560', 'line-width': 1}},
            {
                id: 'borders', type: 'line', source: 'borders',
                paint: {'line-color': '#6d7f96', 'line-width': ['interpolate', ['linear'], ['zoom'], 2, 0.6, 10, 1.6],
                    'line-dasharray': [4, 2], 'line-opacity': 0.8},
            },
            {
                id: 'country-labels', type: 'symbol', source: 'countries', maxzoom: 9,
                layout: {
                    'text-field': ['get', 'name'],
                    'text-font': ['Inter Regular'],
                    'text-size': ['interpolate', ['linear'], ['zoom'], 2, 10, 8, 14],
                    'text-transform': 'uppercase',
                    'text-letter-spacing': 0.12,
                    'symbol-sort-key': ['get', 'rank'],
                    'text-max-width': 8,
                },
                paint: {'text-color': '#5c6d82', 'text-halo-color': '#0a1420', 'text-halo-width': 1.2},
            },
        ],
    },
    center: [8.5, 47.4],
    zoom: 6,
    maxPitch: 0,
    dragRotate: false,
    // Symbols appear at once: a fade would repaint every frame for a while after each
    // update, and with 10,000 tracks every repaint counts.
    fadeDuration: 0,
    attributionControl: {compact: true, customAttribution: 'Basemap: Natural Earth (public domain)'},
});
map.touchZoomRotate.disableRotation();
map.addControl(new maplibregl.NavigationControl({showCompass: false}), 'bottom-right');
map.addControl(new maplibregl.ScaleControl({unit: 'metric', maxWidth: 120}), 'bottom-right');

// Symbols are drawn when a layer first needs them: one image per (class, affiliation).
map.setMissingStyleImageResolver((id) => {
    let c = null;
    if (id.startsWith('trk:')) {
        const [, cls, aff] = id.split(':');
        c = trackSymbol(cls, aff);
    } else if (id.startsWith('sen:')) {
        const [, kind, status] = id.split(':');
        c = sensorSymbol(kind, status);
    } else if (id === 'leader') {
        c = courseLeader();
    } else if (id === 'badge-spoof') {
        c = badge('SPOOF?', '#ff4fd8', '#1a0016');
    } else if (id === 'badge-dark') {
        c = badge('DARK', '#05070a', '#f2f5f8');
    }
    if (c && !map.hasImage(id)) {
        map.addImage(id, c.getContext('2d').getImageData(0, 0, c.width, c.height), {pixelRatio: PIXEL_RATIO});
    }
});

const EMPTY = {type: 'FeatureCollection', features: []};
const dots = new DotLayer('tracks-dots', {
    allDots,
    ringZoom: ICON_ZOOM - 2,
    // The radii of the circle layers the dots replaced: CSS px by zoom.
    dotRadius: (z) => (z <= 4 ? 2 : z <= ICON_ZOOM ? 2 + (1.5 * (z - 4)) / (ICON_ZOOM - 4)
        : Math.min(5, 3.5 + (1.5 * (z - ICON_ZOOM)) / (15 - ICON_ZOOM))),
    memberRadius: (z) => (z >= MEMBER_ICON_ZOOM ? 0
        : 2.5 + (1.5 * Math.max(0, z - ICON_ZOOM)) / (MEMBER_ICON_ZOOM - ICON_ZOOM)),
});
const LABEL_FONT = ['Inter SemiBold'];
const HALO = {'text-halo-color': '#070b10', 'text-halo-width': 1.6};

function addLayers() {
    for (const id of ['rings', 'coverage', 'zones', 'zone-labels', 'sites', 'sensors', 'sensor-ranges', 'trails',
        'groups', 'tracks']) {
        map.addSource(id, {type: 'geojson', data: EMPTY});
    }
    map.addLayer({
        id: 'rings-line', type: 'line', source: 'rings', filter: ['==', ['geometry-type'], 'LineString'],
        paint: {'line-color': '#2c3b4d', 'line-width': 1},
    });
    map.addLayer({
        id: 'rings-label', type: 'symbol', source: 'rings', filter: ['==', ['geometry-type'], 'Point'],
        layout: {'text-field': ['get', 'label'], 'text-font': ['Inter Regular'], 'text-size': 10},
        paint: {'text-color': '#4f6176', 'text-halo-color': '#0c121b', 'text-halo-width': 2},
    });
    map.addLayer({
        id: 'coverage-fill', type: 'fill', source: 'coverage', layout: {visibility: 'none'},
        paint: {'fill-color': ['coalesce', ['get', 'fill'], '#3a7bd5'], 'fill-opacity': 0.3},
    });
    map.addLayer({
        id: 'coverage-line', type: 'line', source: 'coverage', layout: {visibility: 'none'},
        paint: {'line-color': ['coalesce', ['get', 'fill'], '#3a7bd5'], 'line-width': 0.6, 'line-opacity': 0.6},
    });
    const zoneColour = ['match', ['get', 'restriction'],
        'prohibited', RESTRICTION_COLOURS.prohibited,
        'authorisation_required', RESTRICTION_COLOURS.authorisation_required,
        'conditional', RESTRICTION_COLOURS.conditional,
        RESTRICTION_COLOURS.no_restriction];
    map.addLayer({
        id: 'zones-fill', type: 'fill', source: 'zones',
        paint: {'fill-color': zoneColour, 'fill-opacity': ['match', ['get', 'restriction'], 'prohibited', 0.16, 0.11]},
    });
    map.addLayer({
        id: 'zones-line', type: 'line', source: 'zones',
        paint: {'line-color': zoneColour, 'line-width': 2, 'line-opacity': 0.95},
    });
    // A zone's name and height band sit just inside its top edge: the middle of the
    // zone stays clear for the tracks in it.
    map.addLayer({
        id: 'zones-label', type: 'symbol', source: 'zone-labels', minzoom: 8,
        layout: {
            'text-field': ['format', ['get', 'name'], {}, '\n', {}, ['get', 'band'], {'font-scale': 0.88}],
            'text-font': LABEL_FONT, 'text-size': 11, 'text-max-width': 16,
            'text-anchor': 'top', 'text-offset': [0, 0.5],
        },
        paint: {'text-color': zoneColour, ...HALO},
    });
    map.addLayer({
        id: 'sites-fill', type: 'fill', source: 'sites', filter: ['==', ['geometry-type'], 'Polygon'],
        paint: {'fill-color': '#4cc3ff', 'fill-opacity': 0.06},
    });
    map.addLayer({
        id: 'sites-line', type: 'line', source: 'sites', filter: ['==', ['geometry-type'], 'Polygon'],
        paint: {'line-color': '#4cc3ff', 'line-width': 1.6, 'line-dasharray': [3, 2]},
    });
    map.addLayer({
        id: 'sites-point', type: 'circle', source: 'sites',
        filter: ['all', ['==', ['geometry-type'], 'Point'], ['!', ['has', 'label']]],
        paint: {'circle-radius': 4, 'circle-color': '#4cc3ff', 'circle-stroke-color': '#070b10', 'circle-stroke-width': 1.5},
    });
    map.addLayer({
        id: 'sites-label', type: 'symbol', source: 'sites', filter: ['has', 'label'],
        layout: {'text-field': ['get', 'label'], 'text-font': LABEL_FONT, 'text-size': 11,
            'text-offset': [0, 0.5], 'text-anchor': 'top', 'text-max-width': 16},
        paint: {'text-color': '#8fdcff', ...HALO},
    });
    map.addLayer({
        id: 'sensor-ranges', type: 'line', source: 'sensor-ranges',
        paint: {'line-color': '#7fa6c9', 'line-width': 1, 'line-opacity': 0.35, 'line-dasharray': [1, 3]},
    });
    map.addLayer({
        id: 'sensors-icon', type: 'symbol', source: 'sensors',
        layout: {'icon-image': ['get', 'icon'], 'icon-allow-overlap': true, 'icon-ignore-placement': true},
    });
    map.addLayer({
        id: 'sensors-label', type: 'symbol', source: 'sensors', minzoom: 9,
        layout: {'text-field': ['get', 'id'], 'text-font': ['Inter Regular'], 'text-size': 10,
            'text-offset': [0, 1.3], 'text-anchor': 'top', 'text-optional': true},
        paint: {'text-color': '#9fb3c8', ...HALO},
    });
    const affColour = ['match', ['get', 'aff'],
        'hostile', AFFILIATION_COLOURS.hostile, 'suspect', AFFILIATION_COLOURS.suspect,
        'neutral', AFFILIATION_COLOURS.neutral, AFFILIATION_COLOURS.unknown];
    map.addLayer({
        // Miter joins and butt caps: round ones multiply the triangles of 10,000 trails.
        id: 'trails', type: 'line', source: 'trails', minzoom: ICON_ZOOM - 1,
        paint: {'line-color': affColour, 'line-width': 1.4, 'line-opacity': 0.55},
    });
    const groupColour = ['match', ['get', 'a'], 'critical', '#ff5c5c', 'warning', '#ffa94d', '#ffb37a'];
    map.addLayer({
        id: 'groups-fill', type: 'fill', source: 'groups', filter: ['==', ['geometry-type'], 'Polygon'],
        paint: {'fill-color': groupColour, 'fill-opacity': 0.1},
    });
    map.addLayer({
        id: 'groups-line', type: 'line', source: 'groups', filter: ['==', ['geometry-type'], 'Polygon'],
        paint: {'line-color': groupColour, 'line-width': 2, 'line-dasharray': [2, 1.5]},
    });
    map.addLayer({
        id: 'groups-label', type: 'symbol', source: 'groups', filter: ['==', ['geometry-type'], 'Point'],
        layout: {'text-field': ['get', 'label'], 'text-font': LABEL_FONT, 'text-size': 12,
            'text-anchor': 'bottom', 'text-offset': [0, -0.4], 'text-allow-overlap': true},
        paint: {'text-color': groupColour, ...HALO},
    });
    // Every track as a dot (zoomed out, or too many in view for symbols), swarm members
    // as dots inside their outline until zoomed right in, alert rings and the selection
    // ring: one WebGL layer (dots.js).
    map.addLayer(dots);
    map.addLayer({
        id: 'members-icon', type: 'symbol', source: 'tracks', minzoom: MEMBER_ICON_ZOOM,
        filter: ['==', ['get', 'g'], 1],
        layout: {'icon-image': ['get', 'icon'], 'icon-allow-overlap': true, 'icon-ignore-placement': true,
            'icon-size': 0.8},
    });
    map.addLayer({
        id: 'tracks-leader', type: 'symbol', source: 'tracks', minzoom: ICON_ZOOM,
        filter: ['all', ['>', ['get', 's'], 0.5], ['==', ['get', 'g'], 0]],
        layout: {
            'icon-image': 'leader', 'icon-rotate': ['get', 'c'], 'icon-rotation-alignment': 'map',
            'icon-anchor': 'bottom', 'icon-allow-overlap': true, 'icon-ignore-placement': true,
            'icon-size': ['interpolate', ['linear'], ['get', 's'], 0, 0.45, 15, 0.7, 60, 1.0, 250, 1.5],
        },
    });
    map.addLayer({
        id: 'tracks-icon', type: 'symbol', source: 'tracks', minzoom: ICON_ZOOM, filter: ['==', ['get', 'g'], 0],
        layout: {
            'icon-image': ['get', 'icon'], 'icon-allow-overlap': true, 'icon-ignore-placement': true,
            'icon-size': ['interpolate', ['linear'], ['zoom'], ICON_ZOOM, 0.75, 13, 1.0],
            'symbol-sort-key': ['get', 'k'],
        },
    });
    map.addLayer({
        id: 'tracks-badge', type: 'symbol', source: 'tracks', minzoom: ICON_ZOOM,
        filter: ['all', ['!=', ['get', 'b'], ''], ['any', ['==', ['get', 'g'], 0], ['==', ['get', 'b'], 'spoof']]],
        layout: {
            'icon-image': ['concat', 'badge-', ['get', 'b']], 'icon-allow-overlap': true,
            'icon-ignore-placement': true, 'icon-anchor': 'left', 'icon-offset': [11, -11],
        },
    });
    map.addLayer({
        id: 'tracks-label', type: 'symbol', source: 'tracks', minzoom: ICON_ZOOM, filter: ['!=', ['get', 'l'], ''],
        layout: {'text-field': ['get', 'l'], 'text-font': LABEL_FONT, 'text-size': 11,
            'text-anchor': 'top', 'text-offset': [0, 1.25], 'text-optional': true},
        paint: {'text-color': '#e6edf5', ...HALO},
    });
}

// ------------------------------------------------------------------ feeding the sources

/** One GeoJSON source fed from state: rebuilt at most once per frame, with at most one
 * setData in flight (a picture that arrives meanwhile waits; a newer one replaces it). */
class Feed {
    constructor(sourceId, build) {
        this.sourceId = sourceId;
        this.build = build;
        this.dirty = false;
        this.busy = false;
    }

    invalidate() {
        this.dirty = true;
        if (!this.busy) this._schedule();
    }

    _schedule() {
        if (this.scheduled) return;
        this.scheduled = true;
        requestAnimationFrame(() => {
            this.scheduled = false;
            this._flush();
        });
    }

    async _flush() {
        const source = map.getSource(this.sourceId);
        if (!this.dirty || !source) return;
        this.dirty = false;
        const t0 = performance.now();
        const data = this.build();
        const t1 = performance.now();
        // An empty source stays empty without another round trip to the worker.
        if (data === EMPTY && this.empty) return;
        this.empty = data === EMPTY;
        this.busy = true;
        try {
            await source.setData(data);
        } catch (err) {
            console.warn(`${this.sourceId}: ${err}`);
        }
        if (this.sourceId === 'tracks') {
            stats.symbolFeatures = data.features.length;
            const fed = data !== EMPTY;
            // The dots step back once the symbols' tiles are drawn, not when the worker
            // has the data (a second at most: the tiles reload with every update).
            if (fed && !symbolsFed) await sourceLoaded('tracks', 1000);
            if (fed !== symbolsFed) {
                symbolsFed = fed; // the symbols are on the map: the dots step back
                map.triggerRepaint();
            }
        }
        this.busy = false;
        if (this.dirty) this._schedule();
    }
}

/** Resolves when a source's tiles are loaded, or after `ms`. */
function sourceLoaded(id, ms) {
    return new Promise((resolve) => {
        if (map.isSourceLoaded(id)) {
            resolve();
            return;
        }
        const done = () => {
            map.off('sourcedata', check);
            clearTimeout(timer);
            resolve();
        };
        const check = (e) => { if (e.sourceId === id && map.isSourceLoaded(id)) done(); };
        const timer = setTimeout(done, ms);
        map.on('sourcedata', check);
    });
}

/** The dots, rebuilt at most once per frame from state (no worker: see dots.js). */
const dotFeed = {
    scheduled: false,
    invalidate() {
        if (this.scheduled) return;
        this.scheduled = true;
        requestAnimationFrame(() => {
            this.scheduled = false;
            const t0 = performance.now();
            buildDots();
            stats.lastBuildMs = performance.now() - t0;
            stats.dotBuilds += 1;
        });
    },
};

function trackRows() {
    if (state.mode === 'replay') return state.replay ? state.replay.rows : [];
    return state.tracks.values();
}

const AFF_BYTES = Object.fromEntries(AFFILIATIONS.map((a) => [a, rgba(AFFILIATION_COLOURS[a])]));

function buildDots() {
    const severity = alertSeverityByTrack();
    const selected = state.selected;
    dots.setRows(trackRows(), (r) => {
        const sev = severity.get(r.id) || '';
        const k = SEVERITY_RANK[sev] ?? 0;
        return [AFF_BYTES[affiliation(r, sev)], r.group != null && r.group >= 0 ? 1 : 0,
            k >= 3 ? 2 : k >= 2 ? 1 : 0, r.id === selected ? 1 : 0];
    });
}

/** Symbols (icons, course leaders, badges, labels) show from ICON_ZOOM on, unless the
 * view is dense. Their source is fed a zoom level early, so that they are there when
 * the map crosses into them. */
function symbolsWanted() {
    return !dense && map.getZoom() >= ICON_ZOOM - 1;
}

/** Every track a dot: zoomed out, dense, or while the symbols have not reached the map. */
function allDots() {
    return dense || map.getZoom() < ICON_ZOOM || !symbolsFed;
}
let symbolsFed = false;

/** The view grown by its own size on every side: the symbols source holds the tracks in
 * it, so a pan shows symbols at once and is topped up when it ends. */
function symbolBounds() {
    const b = map.getBounds();
    const dx = b.getEast() - b.getWest();
    const dy = b.getNorth() - b.getSouth();
    return [b.getWest() - dx, b.getSouth() - dy, b.getEast() + dx, b.getNorth() + dy];
}

function buildTracks() {
    if (!symbolsWanted()) {
        symbolsFed = false;
        return EMPTY;
    }
    const [w, s, e, n] = symbolBounds();
    const severity = alertSeverityByTrack();
    const features = [];
    for (const r of trackRows()) {
        if (!(r.lon_deg >= w && r.lon_deg <= e && r.lat_deg >= s && r.lat_deg <= n)) continue;
        const sev = severity.get(r.id) || '';
        const aff = affiliation(r, sev);
        const flags = flagsOf(r);
        features.push({
            type: 'Feature',
            geometry: {type: 'Point', coordinates: [r.lon_deg, r.lat_deg]},
            properties: {
                id: r.id,
                icon: `trk:${r.class || 'unknown'}:${aff}`,
                aff,
                c: r.course_deg ?? 0,
                s: r.speed_mps ?? 0,
                b: flags.includes('spoof_suspect') ? 'spoof' : flags.includes('dark') ? 'dark' : '',
                a: sev,
                k: SEVERITY_RANK[sev] ?? 0,
                g: r.group != null && r.group >= 0 ? 1 : 0,
                l: r.id === state.selected ? (shortIdentity(r.identity) || `#${r.id}`) : shortIdentity(r.identity),
            },
        });
    }
    return {type: 'FeatureCollection', features};
}

function buildTrails() {
    if (!layerOn('trails') || dense) return EMPTY;
    const replay = state.mode === 'replay';
    if (replay && !state.replay) return EMPTY;
    const trails = replay ? state.replay.trails : state.trails;
    const rows = replay ? state.replay.byId : state.tracks;
    const n = trails.size;
    const step = Math.max(1, Math.ceil((n * TRAIL_S) / TRAIL_BUDGET));
    const severity = alertSeverityByTrack();
    const lines = {hostile: [], suspect: [], unknown: [], neutral: []};
    for (const [id, tr] of trails) {
        const m = tr.t.length;
        if (m < 2) continue;
        const row = rows.get(id);
        if (!row) continue;
        const line = [];
        for (let k = (m - 1) % step; k < m; k += step) line.push([tr.lon[k], tr.lat[k]]);
        if (line.length < 2) continue;
        lines[affiliation(row, severity.get(id))].push(line);
    }
    return {
        type: 'FeatureCollection',
        features: Object.entries(lines).filter(([, l]) => l.length).map(([aff, l]) => ({
            type: 'Feature', properties: {aff}, geometry: {type: 'MultiLineString', coordinates: l},
        })),
    };
}

/** The swarms shown: the live ones, or those stored at the replayed moment. */
function shownGroups() {
    if (state.mode === 'live') return state.groups;
    return state.replay ? state.replay.groups : [];
}

function buildGroups() {
    const groups = shownGroups();
    if (!groups.length) return EMPTY;
    const rows = state.mode === 'live' ? state.tracks : state.replay.byId;
    // A swarm takes the worst alert of its own and of its members'.
    const groupSeverity = new Map();
    for (const a of shownAlerts().values()) {
        const g = a.group ?? (a.track != null ? rows.get(a.track)?.group : null);
        if (g == null || g < 0) continue;
        const prev = groupSeverity.get(g);
        if (!prev || SEVERITY_RANK[a.severity] > SEVERITY_RANK[prev]) groupSeverity.set(g, a.severity);
    }
    const features = [];
    for (const g of groups) {
        const centre = [g.lon_deg, g.lat_deg];
        const pts = [];
        for (const id of g.members || []) {
            const r = rows.get(id);
            if (r) pts.push([r.lon_deg, r.lat_deg]);
        }
        const hull = pts.length >= 3 ? convexHull(pts) : null;
        const ring = hull ? grow(hull, centre, 60) : circleRing(centre, Math.max(g.extent_m || 0, 40) + 60, 48);
        const a = groupSeverity.get(g.id) || '';
        features.push({type: 'Feature', properties: {id: g.id, a}, geometry: {type: 'Polygon', coordinates: [ring]}});
        const top = ring.reduce((best, p) => (p[1] > best[1] ? p : best), ring[0]);
        features.push({
            type: 'Feature',
            properties: {id: g.id, a, label: `SWARM · ${g.count}`},
            geometry: {type: 'Point', coordinates: [centre[0], top[1]]},
        });
    }
    return {type: 'FeatureCollection', features};
}

const feeds = {
    tracks: new Feed('tracks', buildTracks),
    trails: new Feed('trails', buildTrails),
    groups: new Feed('groups', buildGroups),
};
let uiScheduled = false;

function invalidate(...what) {
    for (const w of what) {
        if (w === 'ui') {
            if (!uiScheduled) {
                uiScheduled = true;
                requestAnimationFrame(() => {
                    uiScheduled = false;
                    renderUi();
                });
            }
        } else if (feeds[w] && mapReady) {
            feeds[w].invalidate();
            if (w === 'tracks') dotFeed.invalidate();
        }
    }
}

// ------------------------------------------------------------------ zones, sites, sensors

function bandText(p) {
    const lo = p.lower_limit;
    const hi = p.upper_limit;
    if (lo != null && hi != null && p.lower_reference === p.upper_reference) {
        return `${Math.round(lo)}–${Math.round(hi)} m ${p.upper_reference}`;
    }
    const side = (h, ref, none) => (h == null ? none : `${Math.round(h)} m ${ref}`);
    return `${side(lo, p.lower_reference, 'ground')} – ${side(hi, p.upper_reference, 'unlimited')}`;
}

/** The zones as the map draws them (circles, Point + radius_m, become polygons), and
 * a label point per zone at the middle of its top edge. */
function zoneFeatures(fc) {
    const features = [];
    const labels = new Map();
    for (const f of fc.features || []) {
        const p = f.properties || {};
        let geometry = f.geometry;
        if (geometry?.type === 'Point' && p.radius_m) {
            geometry = {type: 'Polygon', coordinates: [circleRing(geometry.coordinates, p.radius_m)]};
        }
        if (!geometry || !['Polygon', 'MultiPolygon'].includes(geometry.type)) continue;
        const props = {...p, name: p.name || p.id, band: bandText(p)};
        features.push({type: 'Feature', properties: props, geometry});
        const outer = geometry.type === 'Polygon' ? geometry.coordinates[0] : geometry.coordinates[0][0];
        const top = topMiddle(outer);
        const prev = labels.get(p.id);
        if (!prev || top[1] > prev.geometry.coordinates[1]) {
            labels.set(p.id, {type: 'Feature', properties: props, geometry: {type: 'Point', coordinates: top}});
        }
    }
    return [{type: 'FeatureCollection', features}, {type: 'FeatureCollection', features: [...labels.values()]}];
}

/** The middle of a ring's top: the mean longitude of its corners near the highest one. */
function topMiddle(ring) {
    let south = Infinity;
    let north = -Infinity;
    for (const [, lat] of ring) {
        south = Math.min(south, lat);
        north = Math.max(north, lat);
    }
    const near = ring.filter(([, lat]) => lat >= north - 0.02 * (north - south));
    return [near.reduce((a, q) => a + q[0], 0) / near.length, north];
}

// A node with API tokens answers 401 without one: ask once, keep it for this tab, and
// start again with it (every request and the stream carry it from then on).
const TOKEN_KEY = 'skyfence.token';
let askedForToken = false;

async function apiFetch(url, init = {}) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const headers = token ? {...init.headers, Authorization: `Bearer ${token}`} : init.headers;
    const r = await fetch(url, {...init, headers});
    if (r.status === 401 && !askedForToken) {
        askedForToken = true;
        const given = window.prompt('This node asks for an API token (sf_…):', '')?.trim();
        if (given) {
            sessionStorage.setItem(TOKEN_KEY, given);
            window.location.reload();
        }
    }
    return r;
}

async function getJson(path) {
    const r = await apiFetch(`${API}/${path}`, {headers: {Accept: 'application/json'}});
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    return r.json();
}

async function loadZones() {
    try {
        state.zones = await getJson('zones');
    } catch (err) {
        console.warn(String(err));
        return;
    }
    const [zones, labels] = zoneFeatures(state.zones);
    map.getSource('zones')?.setData(zones);
    map.getSource('zone-labels')?.setData(labels);
}

async function loadSites() {
    try {
        state.sites = await getJson('sites');
    } catch (err) {
        console.warn(String(err));
        return;
    }
    const features = [];
    for (const f of state.sites.features || []) {
        const p = f.properties || {};
        const c = f.geometry?.coordinates;
        if (!c) continue;
        const label = `${p.name || p.id}\n${Math.round(p.radius_m ?? 0)} m · up to ${Math.round(p.ceiling_m ?? 0)} m AGL`;
        features.push({type: 'Feature', properties: {...p}, geometry: f.geometry});
        // The name inside the top of the defended circle, as the zones have theirs.
        const at = p.radius_m ? destination(c, p.radius_m, 0) : c;
        features.push({type: 'Feature', properties: {...p, label}, geometry: {type: 'Point', coordinates: at}});
        if (p.radius_m) {
            features.push({type: 'Feature', properties: {...p}, geometry: {type: 'Polygon', coordinates: [circleRing(c, p.radius_m)]}});
        }
    }
    map.getSource('sites')?.setData({type: 'FeatureCollection', features});
}

async function loadSensors() {
    try {
        state.sensors = (await getJson('sensors')).sensors || [];
    } catch (err) {
        console.warn(String(err));
        return;
    }
    const points = [];
    const ranges = [];
    for (const s of state.sensors) {
        if (s.lat_deg == null || s.lon_deg == null) continue;
        const at = [s.lon_deg, s.lat_deg];
        points.push({type: 'Feature', geometry: {type: 'Point', coordinates: at},
            properties: {id: s.sensor, source: s.source, kind: s.kind, status: s.status,
                icon: `sen:${s.kind}:${s.status}`}});
        if (s.max_range_m && s.max_range_m < 200000) {
            ranges.push({type: 'Feature', properties: {id: s.sensor},
                geometry: {type: 'LineString', coordinates: circleRing(at, s.max_range_m, 128)}});
        }
    }
    map.getSource('sensors')?.setData({type: 'FeatureCollection', features: points});
    map.getSource('sensor-ranges')?.setData({type: 'FeatureCollection', features: ranges});
}

async function loadCoverage() {
    if (state.coverageLoaded) return;
    try {
        const fc = await getJson('sensors/coverage');
        map.getSource('coverage')?.setData(fc);
        state.coverageLoaded = true;
    } catch (err) {
        console.warn(String(err));
    }
}

async function loadHistoryRange() {
    if (state.noHistory) return;
    const r = await apiFetch(`${API}/history/range`).catch(() => null);
    if (r?.status === 503) {
        // The node keeps no store: no timeline, and no asking again.
        state.noHistory = true;
        const body = await r.json().catch(() => ({}));
        slider.disabled = true;
        slider.title = body.error || 'this node keeps no history';
        $('#time-label').textContent = 'no history';
        return;
    }
    if (!r?.ok) return;
    state.historyRange = await r.json();
    renderTimeline();
}

function fitTo(points) {
    const b = bounds(points);
    if (!b) return;
    state.viewSet = true;
    const [[w, s], [e, n]] = b;
    const pad = Math.max(e - w, n - s) < 1e-4 ? 0.02 : 0;
    map.fitBounds([[w - pad, s - pad], [e + pad, n + pad]], {
        padding: {top: 70, bottom: 80, left: 270, right: 370}, maxZoom: 13, duration: 0,
    });
}

function staticPoints() {
    const pts = [];
    const collect = (c) => {
        if (typeof c[0] === 'number') pts.push(c);
        else c.forEach(collect);
    };
    for (const f of state.zones.features || []) if (f.geometry) collect(f.geometry.coordinates);
    for (const f of state.sites.features || []) if (f.geometry) collect(f.geometry.coordinates);
    for (const s of state.sensors) if (s.lon_deg != null) pts.push([s.lon_deg, s.lat_deg]);
    return pts;
}

/** The first view: zones, sites, sensors, and the tracks of the first picture that are
 * near them (an airliner 40 km out should not make the defended area a dot). */
function fitInitial(rows) {
    const pts = staticPoints();
    const near = bounds(pts);
    for (const r of rows) {
        if (near) {
            const [[w, s], [e, n]] = near;
            const mx = Math.max(e - w, 0.03);
            const my = Math.max(n - s, 0.02);
            if (r.lon_deg < w - mx || r.lon_deg > e + mx || r.lat_deg < s - my || r.lat_deg > n + my) continue;
        }
        pts.push([r.lon_deg, r.lat_deg]);
    }
    if (pts.length) fitTo(pts);
}

/** Range rings around the first defended site (else the first radar): context on a
 * basemap that has little to show at a few kilometres. */
function drawRangeRings() {
    const site = (state.sites.features || []).find((f) => f.geometry?.type === 'Point');
    const radar = state.sensors.find((s) => s.kind === 'radar' && s.lon_deg != null) || state.sensors.find((s) => s.lon_deg != null);
    const centre = site ? site.geometry.coordinates : radar ? [radar.lon_deg, radar.lat_deg] : null;
    if (!centre) return;
    const features = [];
    for (const km of [1, 2, 5, 10, 20]) {
        const ring = circleRing(centre, km * 1000, 144);
        features.push({type: 'Feature', properties: {}, geometry: {type: 'LineString', coordinates: ring}});
        for (const k of [0, 36, 72, 108]) {
            features.push({type: 'Feature', properties: {label: `${km} km`}, geometry: {type: 'Point', coordinates: ring[k]}});
        }
    }
    map.getSource('rings')?.setData({type: 'FeatureCollection', features});
}

// ------------------------------------------------------------------ panels

function layerOn(name) {
    const box = document.querySelector(`input[data-layer="${name}"]`);
    return !box || box.checked;
}

const LAYER_GROUPS = {
    trails: ['trails'],
    zones: ['zones-fill', 'zones-line', 'zones-label'],
    sites: ['sites-fill', 'sites-line', 'sites-point', 'sites-label'],
    sensors: ['sensors-icon', 'sensors-label', 'sensor-ranges'],
    coverage: ['coverage-fill', 'coverage-line'],
};

/** Layers the dense view turns off (see DENSE_TRACKS). */
const DETAIL_LAYERS = ['tracks-leader', 'tracks-icon', 'tracks-badge', 'tracks-label', 'members-icon',
    'trails'];
let dense = false;

function applyVisibility() {
    const off = new Set(dense ? DETAIL_LAYERS : []);
    for (const [name, ids] of Object.entries(LAYER_GROUPS)) {
        for (const id of ids) if (!layerOn(name)) off.add(id);
    }
    for (const id of [...DETAIL_LAYERS, ...Object.values(LAYER_GROUPS).flat()]) {
        const want = off.has(id) ? 'none' : 'visible';
        if (map.getLayer(id) && map.getLayoutProperty(id, 'visibility') !== want) {
            map.setLayoutProperty(id, 'visibility', want);
        }
    }
    map.triggerRepaint(); // the dots follow `dense`
}

/** Dense or not, from the tracks in view (a little hysteresis: no flapping at the limit). */
function updateDetail() {
    if (!mapReady) return;
    const b = map.getBounds();
    const w = b.getWest();
    const e = b.getEast();
    const s = b.getSouth();
    const n = b.getNorth();
    let inView = 0;
    for (const r of trackRows()) {
        if (r.lon_deg >= w && r.lon_deg <= e && r.lat_deg >= s && r.lat_deg <= n) inView++;
    }
    const want = dense ? inView > DENSE_TRACKS * 0.8 : inView > DENSE_TRACKS;
    $('#dense-note').hidden = !want;
    $('#dense-note').title = `${inView} tracks in view: drawn as dots, without trails, until fewer than ${Math.round(DENSE_TRACKS * 0.8)} are`;
    if (want === dense) return;
    dense = want;
    applyVisibility();
    invalidate('trails', 'tracks');
}

for (const box of document.querySelectorAll('input[data-layer]')) {
    box.addEventListener('change', async () => {
        const name = box.dataset.layer;
        if (name === 'coverage' && box.checked) await loadCoverage();
        applyVisibility();
        if (name === 'trails') invalidate('trails');
    });
}

function renderUi() {
    updateDetail();
    $('#clock').textContent = fmtTime(state.mode === 'replay' && state.replay ? state.replay.t : state.t);
    $('#n-tracks').textContent = state.mode === 'replay' && state.replay ? state.replay.rows.length : state.tracks.size;
    $('#n-groups').textContent = shownGroups().length;
    $('#n-alerts').textContent = shownAlerts().size;
    $('#alerts-count').textContent = shownAlerts().size;
    renderAlerts();
    renderTrackPanel();
    if (state.mode === 'live' && !state.noHistory) renderTimeline();
}

function ttbNow(a) {
    if (a.time_to_breach_s == null) return null;
    const now = state.mode === 'replay' && state.replay ? state.replay.t : state.t;
    const elapsed = now != null && a.updated_t != null ? Math.max(0, now - a.updated_t) : 0;
    return Math.max(0, a.time_to_breach_s - elapsed);
}

function ttbText(a) {
    const ttb = ttbNow(a);
    if (ttb == null) return '';
    if (ttb <= 0.5 || a.kind === 'zone_breach') return '<span class="ttb now">INSIDE</span>';
    return `<span class="ttb">breach in ${Math.round(ttb)} s</span>`;
}

function alertSubject(a) {
    const parts = [];
    if (a.track != null) parts.push(`track #${a.track}`);
    if (a.group != null) parts.push(`swarm #${a.group}`);
    if (a.zone) parts.push(`zone ${esc(a.zone)}`);
    if (a.site) parts.push(`site ${esc(a.site)}`);
    return parts.join(' · ');
}

function renderAlerts() {
    const ol = $('#alert-list');
    const list = [...shownAlerts().values()].sort((a, b) => (b.raised_t ?? 0) - (a.raised_t ?? 0) || b.alert - a.alert);
    const existing = new Map([...ol.children].map((li) => [li.dataset.id, li]));
    let prev = null;
    for (const a of list.slice(0, 300)) {
        const key = String(a.alert);
        let li = existing.get(key);
        if (li) existing.delete(key);
        else li = makeAlertItem(a.alert);
        fillAlertItem(li, a);
        const want = prev ? prev.nextSibling : ol.firstChild;
        if (li !== want) ol.insertBefore(li, want);
        prev = li;
    }
    for (const li of existing.values()) li.remove();
}

function makeAlertItem(id) {
    const li = document.createElement('li');
    li.className = 'alert';
    li.dataset.id = String(id);
    li.innerHTML = '<div class="head"><span class="sev"></span><span class="kind"></span><span class="when"></span></div>'
        + '<div class="what"></div><div class="reason"></div>'
        + '<div class="foot"><span class="acked"></span><button type="button" class="ack">Acknowledge</button></div>';
    li.addEventListener('click', () => flyToAlert(Number(li.dataset.id)));
    li.querySelector('.ack').addEventListener('click', (ev) => {
        ev.stopPropagation();
        acknowledge(Number(li.dataset.id), li);
    });
    return li;
}

function fillAlertItem(li, a) {
    const acked = Boolean(a.acknowledged_by || a.acknowledged_t);
    li.className = `alert ${a.severity}${acked ? ' acknowledged' : ''}`;
    li.querySelector('.sev').textContent = a.severity;
    li.querySelector('.kind').textContent = KIND_NAMES[a.kind] || a.kind;
    li.querySelector('.when').textContent = fmtTime(a.raised_t);
    const p = a.probability != null ? ` · p ${a.probability.toFixed(2)}` : '';
    const what = `${alertSubject(a)} ${ttbText(a)}${p}`;
    const whatEl = li.querySelector('.what');
    if (whatEl.innerHTML !== what) whatEl.innerHTML = what;
    li.querySelector('.reason').textContent = a.reason || '';
    li.title = a.reason || '';
    const button = li.querySelector('.ack');
    const note = li.querySelector('.acked');
    if (acked) {
        button.hidden = true;
        note.textContent = `acknowledged by ${a.acknowledged_by || '?'} ${a.acknowledged_t ? `at ${fmtTime(a.acknowledged_t)}` : ''}`;
    } else if (state.mode === 'replay') {
        // The past is not acknowledged: go live to act on an alert.
        button.hidden = true;
        note.textContent = 'not acknowledged then';
    } else if (!button.dataset.busy) {
        button.hidden = false;
        button.disabled = false;
        if (!note.dataset.error) note.textContent = '';
    }
}

const operatorInput = $('#operator');
operatorInput.value = localStorage.getItem('skyfence.operator') || 'watch officer';
operatorInput.addEventListener('change', () => localStorage.setItem('skyfence.operator', operatorInput.value.trim()));

async function acknowledge(id, li) {
    const button = li.querySelector('.ack');
    const note = li.querySelector('.acked');
    button.disabled = true;
    button.dataset.busy = '1';
    delete note.dataset.error;
    try {
        const r = await apiFetch(`${API}/alerts/${id}/ack`, {
            method: 'POST', headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({by: operatorInput.value.trim() || 'watch officer'}),
        });
        const body = await r.json().catch(() => ({}));
        if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
        applyAlertEvent(body.event ? body : {...body, event: 'acknowledged', alert: id});
    } catch (err) {
        note.textContent = `not acknowledged: ${err.message}`;
        note.dataset.error = '1';
        button.disabled = false;
    } finally {
        delete button.dataset.busy;
        invalidate('ui', 'tracks');
    }
}

function flyToAlert(id) {
    const a = shownAlerts().get(id);
    if (!a) return;
    let at = null;
    const row = a.track != null
        ? (state.mode === 'replay' ? state.replay?.byId.get(a.track) : state.tracks.get(a.track)) : null;
    if (row) at = [row.lon_deg, row.lat_deg];
    else if (a.group != null) {
        const g = shownGroups().find((x) => x.id === a.group);
        if (g) at = [g.lon_deg, g.lat_deg];
    }
    if (!at && a.lon_deg != null) at = [a.lon_deg, a.lat_deg];
    if (a.track != null) select(a.track);
    if (at) map.flyTo({center: at, zoom: Math.max(map.getZoom(), 13), speed: 1.6});
}

const symbolUrls = new Map();
function symbolUrl(cls, aff) {
    const key = `${cls}:${aff}`;
    if (!symbolUrls.has(key)) symbolUrls.set(key, dataUrl(trackSymbol(cls, aff)));
    return symbolUrls.get(key);
}

function select(id) {
    state.selected = id;
    state.selectedRow = id == null ? null : (state.tracks.get(id) || (state.replay?.rows || []).find((r) => r.id === id) || null);
    $('#track-panel').hidden = id == null;
    invalidate('ui', 'tracks');
}

$('#track-close').addEventListener('click', () => select(null));

function renderTrackPanel() {
    if (state.selected == null) return;
    const live = state.mode === 'live';
    const row = live ? state.tracks.get(state.selected)
        : (state.replay?.rows || []).find((r) => r.id === state.selected);
    const r = row || state.selectedRow;
    const body = $('#track-body');
    if (!r) {
        body.innerHTML = `<div class="muted">Track #${state.selected} is not in the picture.</div>`;
        return;
    }
    const sev = alertSeverityByTrack().get(r.id) || '';
    const aff = affiliation(r, sev);
    const flags = flagsOf(r);
    const alerts = [...shownAlerts().values()].filter((a) => a.track === r.id);
    const where = (a) => `${esc(KIND_NAMES[a.kind] || a.kind)}${a.zone ? ` ${esc(a.zone)}` : ''}${a.site ? ` ${esc(a.site)}` : ''}`;
    const breach = alerts.filter((a) => a.time_to_breach_s != null).map((a) => `<div>${where(a)}: ${ttbText(a)}</div>`).join('');
    const others = alerts.filter((a) => a.time_to_breach_s == null).map((a) => `<div class="sev-${esc(a.severity)}">${where(a)}</div>`).join('');
    const cls = r.class || 'unknown';
    const p = r.class_p != null ? ` <span class="muted">p ${r.class_p.toFixed(2)}</span>` : '';
    const height = r.height_agl_m != null
        ? `${num(r.height_agl_m)} m AGL <span class="muted">(${num(r.height_m)} m WGS84)</span>`
        : `${num(r.height_m)} m WGS84`;
    body.innerHTML = `
      <div class="track-title"><img alt="" src="${symbolUrl(cls, aff)}">
        <div><div class="name">Track #${r.id}${row ? '' : ' <span class="muted">(gone)</span>'}</div>
        <div class="sub">${esc(CLASS_NAMES[cls] || cls)}${p} · ${esc(aff)}${r.status ? ` · ${esc(r.status)}` : ''}${r.history ? ` · at ${fmtTime(r.t)}` : ''}</div></div>
      </div>
      <dl class="kv">
        <dt>Identity</dt><dd>${r.identity ? esc(r.identity) : '<span class="muted">none (non-cooperative)</span>'}</dd>
        <dt>Flags</dt><dd>${flags.length ? flags.map((f) => `<span class="flag ${esc(f)}">${esc(f.replace('_', ' '))}</span>`).join('') : '<span class="muted">none</span>'}</dd>
        <dt>Speed</dt><dd>${num(r.speed_mps, 1)} m/s <span class="muted">(${num((r.speed_mps ?? NaN) * KT_PER_MPS)} kt)</span></dd>
        <dt>Course</dt><dd>${num(r.course_deg)}°</dd>
        <dt>Height</dt><dd>${height}</dd>
        <dt>Climb</dt><dd>${r.climb_mps != null ? `${r.climb_mps >= 0 ? '+' : ''}${num(r.climb_mps, 1)} m/s` : '–'}</dd>
        <dt>Position</dt><dd>${num(r.lat_deg, 5)}, ${num(r.lon_deg, 5)}${r.sd_h_m != null ? ` <span class="muted">±${num(r.sd_h_m)} m</span>` : ''}</dd>
        ${r.group != null && r.group >= 0 ? `<dt>Swarm</dt><dd>#${r.group}</dd>` : ''}
        <dt>Time to breach</dt><dd>${breach || '<span class="muted">none predicted</span>'}</dd>
        ${others ? `<dt>Alerts</dt><dd>${others}</dd>` : ''}
      </dl>
      ${r.reasons ? `<div class="reasons">${esc(r.reasons)}</div>` : ''}`;
}

function renderLegend() {
    const rows = AFFILIATIONS.map((aff) => `<img alt="" src="${symbolUrl('drone_multirotor', aff)}"><span>${{
        hostile: 'hostile: spoofing or critical alert',
        suspect: 'suspect: no identity',
        unknown: 'unknown',
        neutral: 'neutral: ADS-B / Remote ID',
    }[aff]}</span>`);
    for (const [k, name] of Object.entries(RESTRICTION_NAMES).slice(0, 3)) {
        rows.push(`<span class="swatch" style="background:${RESTRICTION_COLOURS[k]}"></span><span>${name}</span>`);
    }
    $('#legend').innerHTML = rows.join('');
}

// ------------------------------------------------------------------ replay timeline

const slider = $('#time-slider');
const liveButton = $('#live-button');
let replayTimer = null;

function renderTimeline() {
    const {t_min: lo, t_max: hi} = state.historyRange || {};
    const has = lo != null && hi != null && hi > lo;
    slider.disabled = !has;
    if (!has) return;
    slider.min = String(Math.floor(lo));
    slider.max = String(Math.ceil(hi));
    if (state.mode === 'live') {
        slider.value = slider.max;
        $('#time-label').textContent = `live · ${fmtTime(state.t)}`;
    }
}

slider.addEventListener('input', () => {
    const t = Number(slider.value);
    enterReplay();
    $('#time-label').textContent = `${fmtTime(t)} (−${Math.max(0, Math.round((state.t ?? t) - t))} s)`;
    clearTimeout(replayTimer);
    replayTimer = setTimeout(() => loadReplay(t), 120);
});

function enterReplay() {
    if (state.mode === 'replay') return;
    state.mode = 'replay';
    liveButton.classList.remove('active');
    $('#replay-banner').hidden = false;
    invalidate('trails', 'groups');
}

let replayRequest = 0;
async function loadReplay(t) {
    const mine = ++replayRequest;
    let body;
    try {
        body = await getJson(`history/at?t=${encodeURIComponent(t)}&window_s=1&trail_s=${TRAIL_S}&alerts=true`);
    } catch (err) {
        console.warn(String(err));
        return;
    }
    if (mine !== replayRequest || state.mode !== 'replay') return;
    const rows = (body.tracks || []).map(historyRow);
    // Trails as the live ones are kept: times and positions in columns, oldest first.
    const trails = new Map();
    for (const p of body.tracks || []) {
        const pts = p.trail || [];
        trails.set(p.id, {t: pts.map((q) => q[0]), lon: pts.map((q) => q[1]), lat: pts.map((q) => q[2])});
    }
    const alerts = new Map();
    for (const e of body.alert_events || []) foldAlertEvent(alerts, e);
    state.replay = {t: body.t ?? t, rows, byId: new Map(rows.map((r) => [r.id, r])), trails, alerts,
        groups: body.groups || []};
    $('#replay-banner').textContent = `REPLAY · ${fmtTime(state.replay.t)}`;
    invalidate('tracks', 'trails', 'groups', 'ui');
}

liveButton.addEventListener('click', () => {
    state.mode = 'live';
    state.replay = null;
    replayRequest += 1;
    liveButton.classList.add('active');
    $('#replay-banner').hidden = true;
    invalidate('tracks', 'trails', 'groups', 'ui');
    loadHistoryRange();
});

// ------------------------------------------------------------------ zone import

$('#zone-file').addEventListener('change', async (ev) => {
    const file = ev.target.files?.[0];
    const out = $('#zone-import-result');
    if (!file) return;
    out.className = 'import-result';
    out.textContent = `importing ${file.name}…`;
    try {
        const r = await apiFetch(`${API}/zones?format=auto&replace=false`, {
            method: 'POST', headers: {'Content-Type': 'application/json'}, body: await file.text(),
        });
        const body = await r.json().catch(() => ({}));
        if (r.ok) {
            out.className = 'import-result ok';
            out.textContent = `${file.name}: ${body.imported} zone(s) imported, ${body.zones} in all`;
            await loadZones();
        } else {
            out.className = 'import-result bad';
            const problems = body.problems || (body.error ? [`${body.error}${body.fix ? ` — ${body.fix}` : ''}`] : [`HTTP ${r.status}`]);
            out.innerHTML = `${esc(file.name)}: not imported (${problems.length} problem${problems.length === 1 ? '' : 's'})<ul>${problems.map((p) => `<li>${esc(p)}</li>`).join('')}</ul>`;
        }
    } catch (err) {
        out.className = 'import-result bad';
        out.textContent = `${file.name}: ${err.message}`;
    }
    ev.target.value = '';
});

// ------------------------------------------------------------------ pointer

const hover = $('#hover');

function hoverHtml(f) {
    const p = f.properties;
    if (TRACK_LAYERS.includes(f.layer.id)) {
        const r = state.mode === 'live' ? state.tracks.get(p.id) : (state.replay?.rows || []).find((x) => x.id === p.id);
        if (!r) return '';
        const flags = flagsOf(r);
        return `<b>#${r.id}</b> ${esc(CLASS_NAMES[r.class] || r.class)}${r.class_p != null ? ` <span class="muted">${r.class_p.toFixed(2)}</span>` : ''}`
            + `${r.identity ? ` · ${esc(r.identity)}` : ''}${flags.length ? ` · <b>${esc(flags.join(', '))}</b>` : ''}`
            + `<br><span class="muted">${num(r.speed_mps, 1)} m/s · ${num(r.course_deg)}° · ${num(r.height_agl_m ?? r.height_m)} m</span>`;
    }
    if (f.layer.id === 'groups-fill') {
        const g = shownGroups().find((x) => x.id === p.id);
        if (!g) return '';
        // A stored swarm has its members only; the live one its motion too.
        const motion = g.speed_mps == null ? 'as stored'
            : `${num(g.speed_mps, 1)} m/s · ${num(g.course_deg)}° · extent ${num(g.extent_m)} m`;
        return `<b>Swarm #${g.id}</b>: ${g.count} tracks<br><span class="muted">${motion}</span>`;
    }
    if (f.layer.id === 'sensors-icon') {
        const s = state.sensors.find((x) => x.sensor === p.id);
        return s ? `<b>${esc(s.sensor)}</b> ${esc(s.kind)} · ${esc(s.status)}<br><span class="muted">${s.detections} detections${s.detail ? ` · ${esc(s.detail)}` : ''}</span>` : '';
    }
    return '';
}

/** Tracks drawn as symbols; TRACK_LAYERS adds the dots (trackAt's feature-likes). */
const SYMBOL_LAYERS = ['tracks-icon', 'members-icon'];
const TRACK_LAYERS = [...SYMBOL_LAYERS, 'tracks-dots'];
/** What else a hover names, once trackAt has found no track. */
const HOVER_LAYERS = ['sensors-icon', 'groups-fill'];

/** A track symbol under the point, else the nearest track within `px` (its dot, or its
 * symbol while that is still on its way to the map), as a feature-like
 * `{layer: {id}, properties: {id}}`; null if neither. */
function trackAt(point, px) {
    const box = [[point.x - px, point.y - px], [point.x + px, point.y + px]];
    const f = map.queryRenderedFeatures(box, {layers: SYMBOL_LAYERS.filter((l) => map.getLayer(l))})[0];
    if (f) return f;
    const id = dots.pick(point, px + 2);
    return id == null ? null : {layer: {id: 'tracks-dots'}, properties: {id}};
}

map.on('mousemove', (e) => {
    if (!mapReady) return;
    const box = [[e.point.x - 4, e.point.y - 4], [e.point.x + 4, e.point.y + 4]];
    const f = trackAt(e.point, 4)
        || map.queryRenderedFeatures(box, {layers: HOVER_LAYERS.filter((l) => map.getLayer(l))})[0];
    const html = f ? hoverHtml(f) : '';
    map.getCanvas().style.cursor = f ? 'pointer' : '';
    if (!html) {
        hover.hidden = true;
        return;
    }
    hover.innerHTML = html;
    hover.hidden = false;
    hover.style.left = `${e.point.x + 14}px`;
    hover.style.top = `${e.point.y + 14}px`;
});
map.on('mouseout', () => { hover.hidden = true; });

map.on('click', (e) => {
    const box = [[e.point.x - 5, e.point.y - 5], [e.point.x + 5, e.point.y + 5]];
    const at = (layers) => map.queryRenderedFeatures(box, {layers: layers.filter((l) => map.getLayer(l))})[0];
    const track = trackAt(e.point, 5);
    if (track) {
        select(track.properties.id);
        return;
    }
    const zone = at(['zones-fill', 'zones-line']);
    if (zone) {
        zonePopup(zone.properties.id, e.lngLat);
        return;
    }
    const site = at(['sites-fill', 'sites-point']);
    if (site) {
        const p = site.properties;
        new maplibregl.Popup({maxWidth: '280px'}).setLngLat(e.lngLat).setHTML(
            `<div class="popup"><h3>${esc(p.name || p.id)}</h3>Defended site <b>${esc(p.id)}</b><br>radius ${num(p.radius_m)} m · ceiling ${num(p.ceiling_m)} m AGL</div>`,
        ).addTo(map);
        return;
    }
    select(null);
});

function zonePopup(id, lngLat) {
    const parts = (state.zones.features || []).filter((f) => f.properties?.id === id);
    if (!parts.length) return;
    const p = parts[0].properties;
    const bands = parts.map((f) => `<li>${esc(bandText(f.properties))}</li>`).join('');
    const when = (p.applicability || []).map((a) => {
        const sched = (a.schedule || []).map((s) => `${(s.days || []).join(',')} ${s.start}–${s.end}`).join('; ');
        return `${a.start ? `from ${esc(a.start)} ` : ''}${a.end ? `until ${esc(a.end)} ` : ''}${sched ? esc(sched) : ''} ${esc(a.timezone || '')}`;
    }).join('<br>');
    new maplibregl.Popup({maxWidth: '320px'}).setLngLat(lngLat).setHTML(`
      <div class="popup"><h3>${esc(p.name || p.id)}</h3>
        <div><span class="restriction ${esc(p.restriction)}">${esc(RESTRICTION_NAMES[p.restriction] || p.restriction)}</span> · <span class="muted">${esc(p.id)}</span></div>
        <div>Altitude band${parts.length > 1 ? 's' : ''}:</div><ul style="margin:2px 0 4px;padding-left:16px">${bands}</ul>
        ${when ? `<div><span class="muted">In force:</span> ${when}</div>` : '<div class="muted">Permanent</div>'}
        ${p.authority ? `<div><span class="muted">Authority:</span> ${esc(p.authority)}</div>` : ''}
        ${p.message ? `<div>${esc(p.message)}</div>` : ''}
        ${p.exempt?.length ? `<div class="muted">${p.exempt.length} exempt identit${p.exempt.length === 1 ? 'y' : 'ies'}</div>` : ''}
      </div>`).addTo(map);
}

// ------------------------------------------------------------------ start

function setConnection(s, detail) {
    state.connection = s;
    const el = $('#conn');
    el.dataset.state = s;
    el.querySelector('.label').textContent = s;
    el.title = detail || `stream ${s}${state.seq != null ? ` (seq ${state.seq})` : ''}`;
}

let mapReady = false;
const streamUrl = (() => {
    const u = new URL(`${API}/stream`, window.location.href);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) u.searchParams.set('token', token);
    return u.href;
})();
const stream = new Stream(streamUrl, {onMessage, onState: setConnection});

window.skyfence = {map, state, stats, stream, dots, ready: false};

map.on('load', async () => {
    addLayers();
    mapReady = true;
    map.on('moveend', () => {
        updateDetail();
        if (symbolsWanted() || symbolsFed) invalidate('tracks'); // symbols near the new view
    });
    // Crossing into (or out of) the symbols' zoom while zooming: feed them now.
    map.on('zoom', () => { if (symbolsWanted() !== symbolsFed) invalidate('tracks'); });
    renderLegend();
    await Promise.allSettled([loadZones(), loadSites(), loadSensors(), loadHistoryRange()]);
    state.staticLoaded = true;
    drawRangeRings();
    stream.start();
    // Frame the first picture when it comes; the static layers alone if none does.
    setTimeout(() => { if (!state.viewSet) fitInitial([...state.tracks.values()]); }, 3000);
    invalidate('tracks', 'trails', 'groups', 'ui');
    setInterval(loadSensors, 10000);
    setInterval(() => { if (state.mode === 'live') loadHistoryRange(); }, 5000);
    window.skyfence.ready = true;
});
