// The reference side of the opening-hours oracle test (tests/test_hours_oracle.py).
//
// Reads JSON lines {"expr": "...", "instants": ["2025-01-01T23:59", ...], "coords": bool}
// on stdin and writes one JSON line per input line, in order:
//   {"ok": true, "states": ["open"|"closed"|"unknown", ...], "comments": [str|null, ...]}
//   {"ok": false, "error": "..."}            (the library refuses the value)
// An empty "instants" list only checks that the value is accepted.
//
// Why one process for the whole batch: starting node and loading the library costs ~100 ms,
// the corpus has over a thousand values, and the test must stay within seconds.
//
// Instants are naive local wall-clock times in Asia/Shanghai (no DST since 1991); the
// caller must start node with TZ=Asia/Shanghai so `new Date(y, m, d, h, mi)` reads them as
// such, the same wall clock the Python side evaluates in.  No time-zone arithmetic happens.
//
// Location: opening_hours.js needs a country for PH and throws without one (it has no
// "calendar off" switch), so the nominatim object names China ("cn": a short list of fixed
// dates).  The Python side evaluates PH with its calendar off; the test compares PH rules
// only on dates where both calendars say "no holiday" (see the test module).  Coordinates
// (central Shanghai) are given only when "coords" is true: without them the library uses
// fixed sun times, as the Rust library does with different constants.
import opening_hours from 'opening_hours';
import { createInterface } from 'node:readline';

if (process.env.TZ !== 'Asia/Shanghai') {
    process.stderr.write('oh_eval.mjs: run with TZ=Asia/Shanghai\n');
    process.exit(2);
}

// The library reports some evaluation problems with console.*; keep stdout for the answers.
for (const name of ['log', 'info', 'warn', 'error', 'debug']) {
    console[name] = (...args) => process.stderr.write(args.join(' ') + '\n');
}

const CHINA = { address: { country_code: 'cn' } };
const CHINA_WITH_COORDS = { lat: '31.2304', lon: '121.4737', address: { country_code: 'cn' } };
const TIME_RANGES = { mode: 0 }; // the opening_hours tag, not collection_times

function parseInstant(text) {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$/.exec(text);
    if (!m) throw new Error(`bad instant ${text}`);
    return new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
}

function evaluate(request) {
    let oh;
    try {
        oh = new opening_hours(request.expr, request.coords ? CHINA_WITH_COORDS : CHINA, TIME_RANGES);
    } catch (err) {
        return { ok: false, error: String(err).split('\n')[0].slice(0, 300) };
    }
    const states = [];
    const comments = [];
    try {
        for (const text of request.instants) {
            const at = parseInstant(text);
            states.push(oh.getUnknown(at) ? 'unknown' : oh.getState(at) ? 'open' : 'closed');
            const comment = oh.getComment(at);
            comments.push(typeof comment === 'string' ? comment : null);
        }
    } catch (err) {
        // Some values parse but throw when evaluated (e.g. SH in a country without school
        // holidays): the library does not accept them in practice.
        return { ok: false, error: 'evaluation: ' + String(err).split('\n')[0].slice(0, 300) };
    }
    return { ok: true, states, comments };
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
const out = [];
for await (const line of lines) {
    if (line.trim()) out.push(JSON.stringify(evaluate(JSON.parse(line))));
}
process.stdout.write(out.join('\n') + (out.length ? '\n' : ''));
