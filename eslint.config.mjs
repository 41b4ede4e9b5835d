// The linter of the project's own JavaScript (issue 25): the courier app's modules and
// service worker, the planners' maps script and the node scripts the tests run.
// ESLint's recommended rules; each file gets the globals of where it runs.
// `make lint` and `make test` run it.
import js from "@eslint/js";
import globals from "globals";

export default [
  // What .gitignore leaves out (ESLint does not read it): installs, builds, outputs.
  { ignores: ["node_modules/", ".venv/", ".pgdata/", "build/", "dist/", "bench/out/",
    "tests/artifacts/"] },
  js.configs.recommended,
  // `({ distance, ...row }) => row` leaves a field out of a copy: not an unused name.
  { rules: { "no-unused-vars": ["error", { ignoreRestSiblings: true }] } },
  {
    files: ["geo_service/app/static/**/*.js"],
    languageOptions: { sourceType: "module", globals: { ...globals.browser } },
  },
  {
    files: ["geo_service/app/static/sw.js"],
    languageOptions: { sourceType: "script", globals: { ...globals.serviceworker } },
  },
  {
    // The planners' maps: a classic script inlined into each map file, beside Leaflet;
    // the console's station form map: a classic script file beside Leaflet.
    files: ["geo_service/maps/static/**/*.js", "geo_service/console/static/**/*.js"],
    languageOptions: { sourceType: "script", globals: { ...globals.browser, L: "readonly" } },
  },
  {
    files: ["tests/**/*.cjs"],
    languageOptions: { sourceType: "commonjs", globals: { ...globals.node } },
  },
  {
    files: ["tests/**/*.mjs", "tests/**/*.js", "eslint.config.mjs"],
    languageOptions: { sourceType: "module", globals: { ...globals.node } },
  },
];
