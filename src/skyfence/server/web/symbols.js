// Map symbols: MIL-STD-2525E / APP-6E air frames from milsymbol (vendor/milsymbol, a
// UMD bundle that sets window.ms), drawn once per (class, affiliation) into images the
// map's symbol layers use; plus the course leader, the flag badges and sensor symbols.

const ms = globalThis.ms;

/** Standard identity digits of a 2525E SIDC (E, not D: milsymbol gives E's suspect
 * its own colour, D draws it as hostile). */
const IDENTITY = {unknown: '1', friend: '3', neutral: '4', suspect: '5', hostile: '6'};

/** Air entity (symbol set 01) per track class. */
const ENTITY = {
    drone_multirotor: '110400', // vertical-takeoff UAV
    drone_fixed_wing: '110300', // UAV
    crewed_aircraft: '120100', // civilian fixed wing
    fast_low_flyer: '110100', // military fixed wing
    unknown: '000000',
};

export const AFFILIATIONS = ['hostile', 'suspect', 'unknown', 'neutral'];

export const AFFILIATION_COLOURS = {
    hostile: '#ff6b6b',
    suspect: '#ffb347',
    unknown: '#fff176',
    neutral: '#8ef08e',
    friend: '#7fd4ff',
};

export const CLASS_NAMES = {
    drone_multirotor: 'Drone (multirotor)',
    drone_fixed_wing: 'Drone (fixed wing)',
    crewed_aircraft: 'Crewed aircraft',
    bird: 'Bird',
    fast_low_flyer: 'Fast low flyer',
    unknown: 'Unknown',
};

/** Symbol size (milsymbol's "size", px at pixel ratio 1). */
const SIZE = 20;
/** Images are drawn at twice their size on the map, for sharp edges when zoomed in. */
export const PIXEL_RATIO = 2;

function sidc(cls, affiliation) {
    return `130${IDENTITY[affiliation] ?? '1'}0100000${ENTITY[cls] ?? '000000'}0000`;
}

/** A canvas of `w`×`h` css px drawn at PIXEL_RATIO. */
function canvas(w, h) {
    const c = document.createElement('canvas');
    c.width = Math.ceil(w * PIXEL_RATIO);
    c.height = Math.ceil(h * PIXEL_RATIO);
    const ctx = c.getContext('2d');
    ctx.scale(PIXEL_RATIO, PIXEL_RATIO);
    return [c, ctx];
}

/** A milsymbol canvas re-centred so that the symbol's anchor is the image centre (the
 * map puts an icon's centre on the point). */
function centred(symbol) {
    const src = symbol.asCanvas(PIXEL_RATIO);
    const a = symbol.getAnchor();
    const ax = a.x * PIXEL_RATIO;
    const ay = a.y * PIXEL_RATIO;
    const half = Math.ceil(Math.max(ax, src.width - ax, ay, src.height - ay));
    const out = document.createElement('canvas');
    out.width = out.height = 2 * half;
    out.getContext('2d').drawImage(src, half - ax, half - ay);
    return out;
}

function bird(affiliation) {
    const [c, ctx] = canvas(22, 22);
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    const path = () => {
        ctx.beginPath();
        ctx.moveTo(3, 9);
        ctx.quadraticCurveTo(7, 5, 11, 11);
        ctx.quadraticCurveTo(15, 5, 19, 9);
    };
    path();
    ctx.strokeStyle = 'rgba(0,0,0,0.85)';
    ctx.lineWidth = 4.5;
    ctx.stroke();
    path();
    ctx.strokeStyle = affiliation === 'hostile' ? AFFILIATION_COLOURS.hostile : '#c9d4df';
    ctx.lineWidth = 2;
    ctx.stroke();
    return c;
}

/** The image of a track symbol: a canvas at PIXEL_RATIO, centred on its anchor. */
export function trackSymbol(cls, affiliation) {
    if (cls === 'bird') return bird(affiliation);
    const symbol = new ms.Symbol(sidc(cls, affiliation), {
        size: SIZE,
        outlineWidth: 2,
        outlineColor: 'rgba(5,8,12,0.9)',
        strokeWidth: 3,
    });
    return centred(symbol);
}

/** A course leader: a short line whose bottom end sits on the track (the map rotates
 * it about that end to the course and scales it with speed). A narrow image: most of
 * a symbol's cost in a software renderer is the transparent pixels it covers. */
export const LEADER_LENGTH = 34;
export function courseLeader() {
    const [c, ctx] = canvas(6, LEADER_LENGTH);
    ctx.lineCap = 'round';
    for (const [colour, width] of [['rgba(0,0,0,0.8)', 4], ['#e9f1f8', 2]]) {
        ctx.beginPath();
        ctx.moveTo(3, LEADER_LENGTH);
        ctx.lineTo(3, 2);
        ctx.strokeStyle = colour;
        ctx.lineWidth = width;
        ctx.stroke();
    }
    return c;
}

/** A small badge for a flag: text on a pill. */
export function badge(text, background, colour) {
    const [, probe] = canvas(1, 1);
    probe.font = '600 9px "Inter", sans-serif';
    const w = Math.ceil(probe.measureText(text).width) + 8;
    const [c, ctx] = canvas(w + 2, 14);
    ctx.fillStyle = 'rgba(0,0,0,0.85)';
    roundRect(ctx, 0, 0, w + 2, 14, 4);
    ctx.fill();
    ctx.fillStyle = background;
    roundRect(ctx, 1, 1, w, 12, 3);
    ctx.fill();
    ctx.fillStyle = colour;
    ctx.font = '600 9px "Inter", sans-serif';
    ctx.textBaseline = 'middle';
    ctx.fillText(text, 5, 7.5);
    return c;
}

function roundRect(ctx, x, y, w, h, r) {
    ctx.beginPath();
    ctx.moveTo(x + r, y);
    ctx.arcTo(x + w, y, x + w, y + h, r);
    ctx.arcTo(x + w, y + h, x, y + h, r);
    ctx.arcTo(x, y + h, x, y, r);
    ctx.arcTo(x, y, x + w, y, r);
    ctx.closePath();
}

/** A sensor: a friendly ground sensor symbol (2525D land equipment 220300 radar,
 * 220100 other sensors), its outline coloured by status. */
export function sensorSymbol(kind, status) {
    const entity = kind === 'radar' || kind === 'radar2d' ? '220300' : '220100';
    return centred(new ms.Symbol(`1303150000${entity}0000`, {
        size: 15,
        outlineWidth: 2,
        outlineColor: status === 'down' ? '#ff4d4f' : status === 'up' ? 'rgba(5,8,12,0.9)' : '#8797aa',
    }));
}

/** A data: URL of an image, for the legend and the track panel. */
export function dataUrl(c) {
    return c.toDataURL('image/png');
}
