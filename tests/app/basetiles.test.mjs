// Unit tests of the street basemap's kept tiles (geo_service/app/static/offline.js
// baseTiles, issue 28): which /tiles/base tiles the worker keeps for the snapshot's area.
// The slippy-map formula is checked on fixed points; the worker itself in Chromium
// (tests/test_app_browser.py test_map_draws_the_services_streets_and_keeps_them_offline).
import assert from "node:assert/strict";
import { test } from "node:test";

import { baseTiles, tileOf } from "../../geo_service/app/static/offline.js";

const HELSINKI = { lon: 24.9458, lat: 60.168 };

function snapshotAround(point, spread, n) {
  const lon = [], lat = [];
  for (let i = 0; i < n; i++) {
    lon.push(point.lon + spread * Math.cos(i)); lat.push(point.lat + spread * Math.sin(i));
  }
  return { stations: { lon, lat } };
}

test("tileOf is the slippy-map formula", () => {
  assert.deepEqual(tileOf(0, 0, 1), [1, 1]);
  assert.deepEqual(tileOf(-180, 85, 1), [0, 0]);
  assert.deepEqual(tileOf(180, -85.06, 3), [7, 7]); // clamped to the grid
  // Central Helsinki at z15 (tests/test_basemap.py places its streets the same way).
  assert.deepEqual(tileOf(24.9458, 60.168, 15), [18654, 9485]);
});

test("the kept tiles are bounded, hold the rider's tile and cover the area when low", () => {
  const wide = snapshotAround(HELSINKI, 0.5, 200); // stations over ~100 km
  const tiles = baseTiles(wide, HELSINKI);
  const radius = 3, zooms = 6;
  assert.ok(tiles.length <= zooms * (2 * radius + 1) ** 2, tiles.length);
  assert.equal(new Set(tiles).size, tiles.length);
  for (let z = 11; z <= 16; z++) {
    const [x, y] = tileOf(HELSINKI.lon, HELSINKI.lat, z);
    assert.ok(tiles.includes(`/tiles/base/${z}/${x}/${y}.mvt`), z);
  }
  // A small area is kept whole at every zoom (a few streets' worth).
  const small = snapshotAround(HELSINKI, 0.001, 10);
  const lon = small.stations.lon, lat = small.stations.lat;
  for (let z = 11; z <= 16; z++) {
    const [x0, y0] = tileOf(Math.min(...lon), Math.max(...lat), z);
    const [x1, y1] = tileOf(Math.max(...lon), Math.min(...lat), z);
    const kept = baseTiles(small, HELSINKI).filter((t) => t.startsWith(`/tiles/base/${z}/`));
    assert.equal(kept.length, (x1 - x0 + 1) * (y1 - y0 + 1), z);
  }
  assert.ok(baseTiles(small, HELSINKI).every((t) => /^\/tiles\/base\/\d+\/\d+\/\d+\.mvt$/.test(t)));
});
