// js-range-filter: an infra data-cleaning step written in JavaScript.
//
// Built into a WebAssembly component with jco + componentize-js against the `cleaner` world of
// `wit/plugins.wit` (see README.md). The world's top-level exports `info` and `configure` are
// plain exported functions; the `cleaning` interface is the exported object `cleaning`.
//
// Policy: drops every row that has a feature value below `min`, above `max`, or NaN. Stateless:
// `wantsFit` is false and `fit` does nothing. Errors are returned by throwing a string, which
// the bindings turn into `err(string)`.
//
// Types across the boundary (jco conventions): list<f32> arrives as Float32Array, list<s32> as
// Int32Array, u64 must be returned as BigInt, a tuple is an array, record fields are camelCase.

const NAME = 'js-range-filter';
const VERSION = '0.1.0';
const DESCRIPTION = 'Drops rows with a feature value outside [min, max] or NaN (JavaScript)';

const DEFAULT_MIN = -1e6;
const DEFAULT_MAX = 1e6;

let min = DEFAULT_MIN;
let max = DEFAULT_MAX;

// Parses a config value as a float; `null` when it is not one (empty, junk, NaN).
function parseFloatStrict(text) {
  const trimmed = text.trim();
  if (trimmed === '') return null;
  const value = Number(trimmed);
  return Number.isNaN(value) ? null : value;
}

export function info() {
  return { name: NAME, version: VERSION, description: DESCRIPTION };
}

export function configure(config) {
  // A configuration is complete: keys it leaves out take their defaults.
  let newMin = DEFAULT_MIN;
  let newMax = DEFAULT_MAX;
  const unknown = [];
  for (const [key, value] of config) {
    if (key === 'min' || key === 'max') {
      const parsed = parseFloatStrict(value);
      if (parsed === null) {
        throw `${NAME}: config key \`${key}\` must be a float, got \`${value}\``;
      }
      if (key === 'min') newMin = parsed;
      else newMax = parsed;
    } else {
      unknown.push(key);
    }
  }
  if (unknown.length > 0) {
    throw `${NAME}: unknown config key(s): ${unknown.join(', ')} (known: min, max)`;
  }
  if (newMin > newMax) {
    throw `${NAME}: config \`min\` (${newMin}) is greater than \`max\` (${newMax})`;
  }
  min = newMin;
  max = newMax;
}

export const cleaning = {
  wantsFit() {
    return false;
  },

  fit(_batch) {
    // Stateless: nothing to accumulate.
  },

  apply(batch) {
    const { columns, features, labels } = batch;
    const width = columns.length;
    const rows = labels.length;
    if (features.length !== rows * width) {
      throw `${NAME}: batch has ${features.length} feature values, expected ${rows} rows x ${width} columns = ${rows * width}`;
    }

    const keptFeatures = new Float32Array(features.length);
    const keptLabels = new Int32Array(rows);
    let kept = 0;
    for (let r = 0; r < rows; r++) {
      const start = r * width;
      const end = start + width;
      let ok = true;
      for (let i = start; i < end; i++) {
        const v = features[i];
        // `!(v >= min)` is also true for NaN.
        if (!(v >= min) || v > max) {
          ok = false;
          break;
        }
      }
      if (ok) {
        keptFeatures.set(features.subarray(start, end), kept * width);
        keptLabels[kept] = labels[r];
        kept++;
      }
    }

    const droppedRows = rows - kept;
    const dropped = droppedRows > 0 ? [{ reason: 'out-of-range', rows: BigInt(droppedRows) }] : [];
    return [
      {
        columns,
        features: keptFeatures.slice(0, kept * width),
        labels: keptLabels.slice(0, kept),
      },
      {
        rowsIn: BigInt(rows),
        rowsOut: BigInt(kept),
        dropped,
        valuesChanged: 0n,
      },
    ];
  },
};
