// ort-bench.js - time one model with ONNX Runtime's CPU engine (onnxruntime-node),
// the peer onnx-run is compared against by tools/bench (and tools/bench-vs-ort).
//   node ort-bench.js MODEL THREADS ITERS WARMUP SHAPES_JSON [OUTDIR]
// SHAPES_JSON: [{"name":..., "type":"int64"|"float32"|..., "dims":[...]}, ...] (from `onnx-run info`);
// an entry with "file": "x.npy" takes that input from the .npy file (the same file tools/bench gives
// onnx-run) instead of generating it. OUTDIR: the first run's outputs are written there as
// output_K.npy, K in the session's output order (tools/bench compares them with onnx-run's).
// Prints one JSON line: load_ms (file -> ready session), first_ms, median_ms, min_ms, max_ms.
// With ORT_PROFILE=PREFIX in the environment, ONNX Runtime's profiler records every run into
// PREFIX_<date>.json (tools/profile-vs-ort reads it).
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

// .npy (format 1.0-3.0, C order, little-endian) <-> ort.Tensor, for the types tools/bench uses
const NPY = { '<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array], '<i8': ['int64', BigInt64Array],
              '<i4': ['int32', Int32Array], '|b1': ['bool', Uint8Array], '|u1': ['uint8', Uint8Array],
              '|i1': ['int8', Int8Array] };

function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.readUInt32BE(0) !== 0x934e554d || buf.toString('latin1', 4, 6) !== 'PY') throw new Error(file + ': not a .npy file');
  const v = buf[6];
  const hlen = v === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const off = (v === 1 ? 10 : 12) + hlen;
  const hdr = buf.toString('latin1', v === 1 ? 10 : 12, off);
  const descr = /'descr':\s*'([^']+)'/.exec(hdr), shape = /'shape':\s*\(([^)]*)\)/.exec(hdr);
  if (!descr || !shape || /'fortran_order':\s*True/.test(hdr)) throw new Error(file + ': unsupported .npy header ' + hdr);
  const t = NPY[descr[1]];
  if (!t) throw new Error(file + ': .npy type ' + descr[1] + ' not handled');
  const dims = shape[1].split(',').map((x) => x.trim()).filter((x) => x !== '').map(Number);
  const n = dims.reduce((a, b) => a * b, 1);
  const bytes = new Uint8Array(n * t[1].BYTES_PER_ELEMENT);
  bytes.set(buf.subarray(off, off + bytes.length));
  return new ort.Tensor(t[0], new t[1](bytes.buffer), dims);
}

function writeNpy(file, tensor) {
  const descr = Object.keys(NPY).find((k) => NPY[k][0] === tensor.type);
  if (!descr) throw new Error('output type ' + tensor.type + ' not handled');
  const shape = '(' + tensor.dims.join(', ') + (tensor.dims.length === 1 ? ',' : '') + ')';
  let hdr = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ', }';
  hdr += ' '.repeat(63 - ((hdr.length + 10) % 64)) + '\n';
  const head = Buffer.alloc(10);
  head.writeUInt32BE(0x934e554d, 0); head.write('PY', 4, 'latin1'); head[6] = 1; head[7] = 0;
  head.writeUInt16LE(hdr.length, 8);
  const d = tensor.data;
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(hdr, 'latin1'), Buffer.from(d.buffer, d.byteOffset, d.byteLength)]));
}

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
  const [model, threads, iters, warmup, shapes, outdir] = process.argv.slice(2);
  const specs = JSON.parse(shapes);
  const opts = { executionProviders: ['cpu'], graphOptimizationLevel: 'all',
                 intraOpNumThreads: +threads, interOpNumThreads: 1, executionMode: 'sequential' };
  if (process.env.ORT_PROFILE) { opts.enableProfiling = true; opts.profileFilePrefix = process.env.ORT_PROFILE; }
  let t0 = performance.now();
  const sess = await ort.InferenceSession.create(model, opts);
  const load = performance.now() - t0;
  const feeds = {};
  for (const s of specs) feeds[s.name] = s.file ? readNpy(s.file) : makeInput(s);
  t0 = performance.now();
  const out = await sess.run(feeds);
  const first = performance.now() - t0;
  if (outdir) sess.outputNames.forEach((n, k) => writeNpy(path.join(outdir, 'output_' + k + '.npy'), out[n]));
  for (let i = 0; i < +warmup; i++) await sess.run(feeds);
  const times = [];
  for (let i = 0; i < +iters; i++) {
    t0 = performance.now();
    await sess.run(feeds);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const med = times.length % 2 ? times[(times.length - 1) / 2] : (times[times.length / 2 - 1] + times[times.length / 2]) / 2;
  const res = { load_ms: load, first_ms: first, median_ms: med, min_ms: times[0], max_ms: times[times.length - 1] };
  if (process.env.ORT_PROFILE) sess.endProfiling();
  console.log(JSON.stringify(res));
}
main().catch((e) => { console.error('ort-bench: ' + e.message); process.exit(1); });
