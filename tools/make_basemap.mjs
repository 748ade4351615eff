#!/usr/bin/env node
// The web map's offline basemap: Natural Earth 1:10m land, international borders and
// country label points, as GeoJSON, from the npm package world-atlas (TopoJSON).
//
// Run once when the basemap changes (the output is committed; nothing here runs at
// serve time). Node ≥ 18:
//
//   npm install --prefix /tmp/basemap world-atlas@2.0.2 topojson-client@3.1.0 polylabel@2.1.0
//   node tools/make_basemap.mjs /tmp/basemap/node_modules
//
// Writes src/skyfence/server/web/basemap/{land,borders,countries}.geojson. Coordinates
// are rounded to 1e-4 degrees (about 10 m, far under the 1:10m data's own accuracy).
// Natural Earth is public domain; world-atlas is ISC; see web/vendor/README.md.

import {readFileSync, writeFileSync, mkdirSync} from 'node:fs';
import {dirname, join, resolve} from 'node:path';
import {fileURLToPath, pathToFileURL} from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const modules = resolve(process.argv[2] ?? 'node_modules');
const out = resolve(process.argv[3] ?? join(here, '..', 'src', 'skyfence', 'server', 'web', 'basemap'));

const topojson = await import(pathToFileURL(join(modules, 'topojson-client', 'src', 'index.js')));
const {default: polylabel} = await import(pathToFileURL(join(modules, 'polylabel', 'polylabel.js')));
const world = JSON.parse(readFileSync(join(modules, 'world-atlas', 'countries-10m.json'), 'utf8'));
const atlasVersion = JSON.parse(readFileSync(join(modules, 'world-atlas', 'package.json'), 'utf8')).version;

const DIGITS = 1e4;
const round = (x) => Math.round(x * DIGITS) / DIGITS;

function roundCoords(c) {
    if (typeof c[0] === 'number') return [round(c[0]), round(c[1])];
    const r = c.map(roundCoords);
    // Rounding can make neighbours equal: drop repeats (a ring keeps its closing point).
    if (typeof r[0][0] === 'number') {
        return r.filter((p, i) => i === 0 || p[0] !== r[i - 1][0] || p[1] !== r[i - 1][1]);
    }
    return r;
}

function geometry(g) {
    return {type: g.type, coordinates: roundCoords(g.coordinates)};
}

function ringArea(ring) {
    let a = 0;
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
        a += (ring[j][0] - ring[i][0]) * (ring[j][1] + ring[i][1]);
    }
    return Math.abs(a / 2);
}

function write(name, fc) {
    const path = join(out, name);
    writeFileSync(path, JSON.stringify(fc));
    console.log(`${path}: ${fc.features.length} features`);
}

mkdirSync(out, {recursive: true});
const source = `Natural Earth 1:10m via world-atlas ${atlasVersion}`;

const land = topojson.feature(world, world.objects.land);
write('land.geojson', {type: 'FeatureCollection', source,
    features: [{type: 'Feature', properties: {}, geometry: geometry(land.geometry ?? land.features[0].geometry)}]});

const borders = topojson.mesh(world, world.objects.countries, (a, b) => a !== b);
write('borders.geojson', {type: 'FeatureCollection', source,
    features: [{type: 'Feature', properties: {kind: 'international'}, geometry: geometry(borders)}]});

// One label point per country, inside its largest part; "rank" orders labels by size so
// that the map can show the big ones first.
const countries = topojson.feature(world, world.objects.countries).features;
const labels = [];
for (const c of countries) {
    const g = c.geometry;
    if (!g || !c.properties?.name) continue;
    const polygons = g.type === 'Polygon' ? [g.coordinates] : g.coordinates;
    let best = null;
    let bestArea = -1;
    let total = 0;
    for (const p of polygons) {
        const a = ringArea(p[0]);
        total += a;
        if (a > bestArea) {
            bestArea = a;
            best = p;
        }
    }
    const at = polylabel(best, 0.05);
    labels.push({type: 'Feature', properties: {name: c.properties.name, area_deg2: Math.round(total * 100) / 100},
        geometry: {type: 'Point', coordinates: [round(at[0]), round(at[1])]}});
}
labels.sort((a, b) => b.properties.area_deg2 - a.properties.area_deg2);
labels.forEach((f, i) => { f.properties.rank = i; });
write('countries.geojson', {type: 'FeatureCollection', source, features: labels});
