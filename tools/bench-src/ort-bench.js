// ort-bench.js - time one model with ONNX Runtime's CPU engine (onnxruntime-node),
// the peer onnx-run is compared against by tools/bench-vs-ort.
//   node ort-bench.js MODEL THREADS ITERS WARMUP SHAPES_JSON
// SHAPES_JSON: [{"name":..., "type":"int64"|"float32"|..., "dims":[...]}, ...] (from `onnx-run info`).
// Prints one JSON line: load_ms (file -> ready session), first_ms, median_ms, min_ms, max_ms.
'use strict';
const ort = require('onnxruntime-node');

function makeInput(spec) {
  const n = spec.dims.reduce((a, b) => a * b, 1);
  let seed = 12345;
  const next = () => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed >>> 8; };
  switch (spec.type) {
    case 'float32': { const a = new Float32Array(n); for (let i = 0; i < n; i++) a[i] = next() / 8388608 - 1; return new ort.Tensor('float32', a, spec.dims); }
    case 'int64': { const a = new BigInt64Array(n); for (let i = 0; i < n; i++) a[i] = BigInt(next() % 2); return new ort.Tensor('int64', a, spec.dims); }
    case 'int32': { const a = new Int32Array(n); for (let i = 0; i < n; i++) a[i] = next() % 2; return new ort.Tensor('int32', a, spec.dims); }
    case 'bool': { const a = new Uint8Array(n); for (let i = 0; i < n; i++) a[i] = i & 1; return new ort.Tensor('bool', a, spec.dims); }
    default: throw new Error('ort-bench: input type ' + spec.type + ' not handled');
  }
}

async function main() {
  const [model, threads, iters, warmup, shapes] = process.argv.slice(2);
  const specs = JSON.parse(shapes);
  const opts = { executionProviders: ['cpu'], graphOptimizationLevel: 'all',
                 intraOpNumThreads: +threads, interOpNumThreads: 1, executionMode: 'sequential' };
  let t0 = performance.now();
  const sess = await ort.InferenceSession.create(model, opts);
  const load = performance.now() - t0;
  const feeds = {};
  for (const s of specs) feeds[s.name] = makeInput(s);
  t0 = performance.now();
  await sess.run(feeds);
  const first = performance.now() - t0;
  for (let i = 0; i < +warmup; i++) await sess.run(feeds);
  const times = [];
  for (let i = 0; i < +iters; i++) {
    t0 = performance.now();
    await sess.run(feeds);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const med = times.length % 2 ? times[(times.length - 1) / 2] : (times[times.length / 2 - 1] + times[times.length / 2]) / 2;
  console.log(JSON.stringify({ load_ms: load, first_ms: first, median_ms: med, min_ms: times[0], max_ms: times[times.length - 1] }));
}
main().catch((e) => { console.error('ort-bench: ' + e.message); process.exit(1); });
