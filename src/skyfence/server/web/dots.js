// Tracks as dots: one MapLibre custom layer that draws every track with a single WebGL
// draw call from typed arrays.
//
// Why by hand: a GeoJSON source re-serialises every feature for its worker, re-tiles them
// and repaints tile by tile as the tiles come back. At 10,000 tracks updating once a
// second that cost the page about 75 ms of main thread per update for the hand-over alone
// and two or three full repaints as tiles arrived. Here an update is one pass over the
// rows into typed arrays, one buffer upload and one repaint; nothing goes to a worker.
// The symbol layers (icons, labels, course leaders) still come from the GeoJSON source,
// which the map feeds only while they show: zoomed in on fewer tracks.
//
// What it draws, matching the circle layers it replaces:
// - every track as a dot in its affiliation's colour, or only swarm members (the other
//   tracks are symbols) — chosen per frame by `allDots`, and members only while
//   `memberRadius` is above zero;
// - a ring round a track with a warning or critical alert, from zoom `ringZoom` on;
// - a ring round the selected track, at any zoom.

const VERTEX = `
attribute vec2 a_pos;
attribute vec4 a_colour;
attribute vec4 a_style; // member (0/1), alert ring (0 none, 1 warning, 2 critical), selected (0/1)
uniform mat4 u_matrix;
uniform float u_all; // 1: every track is a dot; 0: only swarm members
uniform float u_rings; // 1: alert rings show at this zoom
uniform float u_dot; // dot radius, CSS px
uniform float u_member_dot; // swarm members' radius when the other tracks are symbols (0: none)
uniform float u_ratio; // device pixels per CSS px
varying vec4 v_colour;
varying float v_dot; // radius of the dot in CSS px (0: no dot)
varying float v_ring; // 0 none, 1 warning, 2 critical
varying float v_selected;
varying float v_size; // sprite side, CSS px
void main() {
    float member = a_style.x;
    float dot = u_all > 0.5 ? u_dot : member * u_member_dot;
    float ring = (u_rings > 0.5 && member < 0.5) ? a_style.y : 0.0;
    float selected = a_style.z;
    float extent = selected > 0.5 ? 23.0 : ring > 0.5 ? 19.0 : dot + 1.0;
    v_colour = a_colour;
    v_dot = dot;
    v_ring = ring;
    v_selected = selected;
    v_size = 2.0 * extent + 2.0;
    if (dot <= 0.0 && ring <= 0.5 && selected <= 0.5) {
        gl_Position = vec4(2.0, 2.0, 2.0, 1.0); // outside the clip volume: nothing drawn
        gl_PointSize = 0.0;
        return;
    }
    gl_Position = u_matrix * vec4(a_pos, 0.0, 1.0);
    gl_PointSize = v_size * u_ratio;
}`;

const FRAGMENT = `
precision mediump float;
varying vec4 v_colour;
varying float v_dot;
varying float v_ring;
varying float v_selected;
varying float v_size;
// Premultiplied colours, as MapLibre blends.
const vec4 STROKE = vec4(0.02, 0.03, 0.05, 1.0);
const vec4 WARNING = vec4(1.0, 0.62, 0.1, 1.0) * 0.9;
const vec4 CRITICAL = vec4(1.0, 0.3, 0.31, 1.0) * 0.9;
const vec4 SELECTED = vec4(0.3, 0.76, 1.0, 1.0);
// Coverage of a band [a, b] (CSS px from the centre) at distance d, antialiased over a px.
float band(float d, float a, float b) {
    return clamp(d - a + 0.5, 0.0, 1.0) * clamp(b - d + 0.5, 0.0, 1.0);
}
void main() {
    float d = length(gl_PointCoord - 0.5) * v_size;
    vec4 c = vec4(0.0);
    if (v_dot > 0.0) {
        float inside = clamp(v_dot - d + 0.5, 0.0, 1.0);
        c = v_colour * inside + STROKE * band(d, v_dot, v_dot + 1.0) * (1.0 - inside);
    }
    if (v_ring > 0.5) c = mix(c, v_ring > 1.5 ? CRITICAL : WARNING, band(d, 15.75, 18.25));
    if (v_selected > 0.5) c = mix(c, SELECTED, band(d, 20.0, 22.0));
    if (c.a <= 0.0) discard;
    gl_FragColor = c;
}`;

function compile(gl, type, source) {
    const s = gl.createShader(type);
    gl.shaderSource(s, source);
    gl.compileShader(s);
    if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(`dots shader: ${gl.getShaderInfoLog(s)}`);
    return s;
}

/** Web Mercator of a longitude and latitude, as MapLibre's MercatorCoordinate (0..1). */
function mercX(lon) {
    return (180 + lon) / 360;
}

function mercY(lat) {
    const s = Math.sin((lat * Math.PI) / 180);
    return 0.5 - (0.25 * Math.log((1 + s) / (1 - s))) / Math.PI;
}

/** `#rrggbb` as four bytes. */
export function rgba(hex) {
    const v = parseInt(hex.slice(1), 16);
    return [(v >> 16) & 255, (v >> 8) & 255, v & 255, 255];
}

export class DotLayer {
    /**
     * @param {string} id layer id
     * @param {object} options `dotRadius(zoom)`, `memberRadius(zoom)`, `allDots()`,
     *   `ringZoom` (alert rings from this zoom on)
     */
    constructor(id, options) {
        this.id = id;
        this.type = 'custom';
        this.renderingMode = '2d';
        this.options = options;
        this.n = 0;
        this.capacity = 0;
        this.ids = new Int32Array(0);
        this.mx = new Float64Array(0); // mercator, for picking
        this.my = new Float64Array(0);
        this.origin = [0.5, 0.5];
        this.dirty = false;
        this.map = null;
    }

    _grow(n) {
        if (n <= this.capacity) return;
        const cap = Math.max(1024, 2 ** Math.ceil(Math.log2(n)));
        this.capacity = cap;
        this.ids = new Int32Array(cap);
        this.mx = new Float64Array(cap);
        this.my = new Float64Array(cap);
        // One interleaved vertex: x, y (float32, relative to the origin), colour (4 bytes),
        // style (4 bytes): 16 bytes.
        this.vertices = new ArrayBuffer(cap * 16);
        this.f32 = new Float32Array(this.vertices);
        this.u8 = new Uint8Array(this.vertices);
    }

    /**
     * Replace the dots. `rows` is an iterable of track rows; `style(row)` gives
     * `[colour bytes, member, ring, selected]` for one.
     */
    setRows(rows, style) {
        const list = Array.isArray(rows) ? rows : [...rows];
        const n = list.length;
        this._grow(n);
        // Positions go to the GPU relative to an origin near the tracks, so that float32
        // keeps them to well under a pixel at any zoom (absolute Mercator in float32 is
        // good to about 2 m).
        const first = list.find((r) => Number.isFinite(r.lon_deg) && Number.isFinite(r.lat_deg));
        if (first) this.origin = [mercX(first.lon_deg), mercY(first.lat_deg)];
        const [ox, oy] = this.origin;
        const {ids, mx, my, f32, u8} = this;
        let k = 0;
        for (const r of list) {
            if (!Number.isFinite(r.lon_deg) || !Number.isFinite(r.lat_deg)) continue; // not drawn
            const x = mercX(r.lon_deg);
            const y = mercY(r.lat_deg);
            const [colour, member, ring, selected] = style(r);
            ids[k] = r.id;
            mx[k] = x;
            my[k] = y;
            f32[k * 4] = x - ox;
            f32[k * 4 + 1] = y - oy;
            const b = k * 16 + 8;
            u8[b] = colour[0];
            u8[b + 1] = colour[1];
            u8[b + 2] = colour[2];
            u8[b + 3] = colour[3];
            u8[b + 4] = member;
            u8[b + 5] = ring;
            u8[b + 6] = selected;
            u8[b + 7] = 0;
            k += 1;
        }
        this.n = k;
        this.dirty = true;
        if (this.map) this.map.triggerRepaint();
    }

    onAdd(map, gl) {
        this.map = map;
        const program = gl.createProgram();
        gl.attachShader(program, compile(gl, gl.VERTEX_SHADER, VERTEX));
        gl.attachShader(program, compile(gl, gl.FRAGMENT_SHADER, FRAGMENT));
        gl.linkProgram(program);
        if (!gl.getProgramParameter(program, gl.LINK_STATUS)) {
            throw new Error(`dots program: ${gl.getProgramInfoLog(program)}`);
        }
        this.program = program;
        this.loc = {
            pos: gl.getAttribLocation(program, 'a_pos'),
            colour: gl.getAttribLocation(program, 'a_colour'),
            style: gl.getAttribLocation(program, 'a_style'),
        };
        this.uni = {};
        for (const u of ['u_matrix', 'u_all', 'u_rings', 'u_dot', 'u_member_dot', 'u_ratio']) {
            this.uni[u] = gl.getUniformLocation(program, u);
        }
        this.buffer = gl.createBuffer();
        this.dirty = true;
    }

    onRemove(map, gl) {
        if (this.buffer) gl.deleteBuffer(this.buffer);
        if (this.program) gl.deleteProgram(this.program);
        this.map = null;
    }

    render(gl, args) {
        if (this.n === 0) return;
        const zoom = this.map.getZoom();
        gl.useProgram(this.program);
        gl.bindBuffer(gl.ARRAY_BUFFER, this.buffer);
        if (this.dirty) {
            gl.bufferData(gl.ARRAY_BUFFER, this.u8.subarray(0, this.n * 16), gl.DYNAMIC_DRAW);
            this.dirty = false;
        }
        // The map's main matrix takes Mercator (0..1) to clip space (its
        // modelViewProjectionMatrix takes world pixels); fold the origin's translation
        // into it in double precision: m · translate(origin).
        const m = args.defaultProjectionData.mainMatrix;
        const [ox, oy] = this.origin;
        const t = new Float32Array(16);
        for (let i = 0; i < 16; i += 1) t[i] = m[i];
        for (let r = 0; r < 4; r += 1) t[12 + r] = m[r] * ox + m[4 + r] * oy + m[12 + r];
        gl.uniformMatrix4fv(this.uni.u_matrix, false, t);
        const o = this.options;
        gl.uniform1f(this.uni.u_all, o.allDots() ? 1 : 0);
        gl.uniform1f(this.uni.u_rings, zoom >= o.ringZoom ? 1 : 0);
        gl.uniform1f(this.uni.u_dot, o.dotRadius(zoom));
        gl.uniform1f(this.uni.u_member_dot, o.memberRadius(zoom));
        gl.uniform1f(this.uni.u_ratio, this.map.getPixelRatio());
        const {pos, colour, style} = this.loc;
        gl.enableVertexAttribArray(pos);
        gl.vertexAttribPointer(pos, 2, gl.FLOAT, false, 16, 0);
        gl.enableVertexAttribArray(colour);
        gl.vertexAttribPointer(colour, 4, gl.UNSIGNED_BYTE, true, 16, 8);
        gl.enableVertexAttribArray(style);
        gl.vertexAttribPointer(style, 4, gl.UNSIGNED_BYTE, false, 16, 12);
        gl.enable(gl.BLEND);
        gl.blendFunc(gl.ONE, gl.ONE_MINUS_SRC_ALPHA);
        gl.drawArrays(gl.POINTS, 0, this.n);
        gl.disableVertexAttribArray(pos);
        gl.disableVertexAttribArray(colour);
        gl.disableVertexAttribArray(style);
    }

    /**
     * The track nearest a screen point, within `radiusPx`, or null: of all the tracks,
     * whether drawn as a dot now or as a symbol (which stands where its dot would).
     */
    pick(point, radiusPx) {
        if (!this.map || this.n === 0) return null;
        const a = this.map.unproject([point.x, point.y]);
        const b = this.map.unproject([point.x + radiusPx, point.y]);
        const cx = mercX(a.lng);
        const cy = mercY(a.lat);
        const r = Math.hypot(mercX(b.lng) - cx, mercY(b.lat) - cy);
        let best = -1;
        let bestD = r * r;
        const {mx, my} = this;
        for (let i = 0; i < this.n; i += 1) {
            const dx = mx[i] - cx;
            const dy = my[i] - cy;
            const d = dx * dx + dy * dy;
            if (d <= bestD) {
                bestD = d;
                best = i;
            }
        }
        return best < 0 ? null : this.ids[best];
    }

    /** What is drawn: `{id: [lon, lat]}` (for tests and the page's own checks). */
    positions() {
        const out = {};
        for (let i = 0; i < this.n; i += 1) {
            const lon = this.mx[i] * 360 - 180;
            const lat = (360 / Math.PI) * Math.atan(Math.exp((0.5 - this.my[i]) * 2 * Math.PI)) - 90;
            out[this.ids[i]] = [lon, lat];
        }
        return out;
    }
}
