#!/usr/bin/env node
// Pull every opening_hours value out of opening_hours.js's own test suite (test/test.js),
// for the oracle corpus (tests/data/opening_hours_oracle_corpus.txt).  Run by
// tests/oracle/build_corpus.py, not by the test suite.
//
// Why run the file rather than grep it: many values are built at run time (a shared suffix
// appended, arrays of variants, `ignored(value, reason)` wrappers), so only executing the
// test definitions gives the strings the upstream suite really evaluates.  The suite's own
// runner is replaced by a recorder: a second `function opening_hours_test` declaration
// appended to the source wins over the first (both are hoisted, the last one counts), and
// `require` is faked so nothing outside this file is loaded and no test is run.
//
// Usage: node extract_testsuite.cjs path/to/test.js  -> JSON lines {value, kind, mode}
'use strict';
const fs = require('fs');
const vm = require('vm');

const source = fs.readFileSync(process.argv[2], 'utf8').replace(/^#!.*\n/, '');
const recorder = `
function opening_hours_test() {
    const record = (kind, values, mode) => {
        for (const v of (typeof values === 'string' ? [values] : values)) {
            const value = Array.isArray(v) ? v[0] : v;  // ignored(value, reason)
            // The mode argument is a number or an options object ({mode: n, ...}).
            const m = typeof mode === 'object' && mode !== null ? mode.mode : mode;
            if (typeof value === 'string') __out.push({value, kind, mode: typeof m === 'number' ? m : 0});
        }
    };
    this.addTest = (n, values, f, t, i, d, u, w, nom, last, mode) => record('test', values, mode);
    this.addShouldFail = (n, values, nom, last, mode) => record('should_fail', values, mode);
    this.addShouldWarn = (n, values, nom, last, mode) => record('should_warn', values, mode);
    this.addStructuredWarnings = (n, value, types, nom, last, mode) => record('warnings', value, mode);
    this.addCompMatchingRule = (n, values) => record('matching_rule', values, 0);
    this.addNextChangeTest = (n, value, from, exp, nom, last, mode) => record('next_change', value, mode);
    this.addPrettifyValueForLocale = (n, values) => record('prettify', values, 0);
    this.addPrettifyValue = (n, values) => record('prettify', values, 0);
    this.addEqualTo = (n, first, second) => { record('equal_to', first, 0); record('equal_to', [second], 0); };
    this.run = () => true;
}
`;
const fakeYargs = () => {
    const y = { usage: () => y, describe: () => y, alias: () => y, default: () => y,
        help: () => y, parse: () => ({ locale: 'en', 'library-file': 'x' }) };
    return y;
};
const fakeRequire = (name) => ({
    'yargs/helpers': { hideBin: (a) => a },
    'yargs': fakeYargs,
    'path': { resolve: (p) => p },
    'x': function opening_hours() {},
    'node:util': { styleText: (_s, t) => t },
    'timekeeper': { travel: () => {}, reset: () => {} },
    'glob': { sync: () => [] },
    'yaml': { parse: () => ({}) },
    'fs': {},
}[name]);
const out = [];
const sandbox = {
    require: fakeRequire, __out: out, console, Date,
    process: { argv: [], env: {}, exit: () => {} },
};
vm.runInNewContext(source + recorder, sandbox, { filename: 'test.js' });
for (const row of out) process.stdout.write(JSON.stringify(row) + '\n');
