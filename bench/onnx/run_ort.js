// Times one ONNX model with ONNX Runtime (npm onnxruntime-node, CPU) at batch 1, the way a deployer
// would run it: 2 intra-op threads, spinning off (with spinning, 2 threads ran slower than 1 on this
// machine, measured), all graph optimisations.
//   node bench/onnx/run_ort.js model.onnx input.bin output.bin reps
// input.bin: float32 [1, 3, H, W] (H, W from the model); output.bin receives the last output.
// Prints one JSON line: {"load_ms", "first_ms", "ms": [per rep], "median_ms", "threads", "dims", "version"}.
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [modelPath, inputPath, outputPath, repsArg] = process.argv.slice(2);
  const reps = parseInt(repsArg || '3', 10);
  const opts = {
    executionProviders: ['cpu'],
    intraOpNumThreads: 2,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    extra: {session: {intra_op: {allow_spinning: '0'}, inter_op: {allow_spinning: '0'}}},
  };
  let t0 = process.hrtime.bigint();
  const model = await ort.InferenceSession.create(modelPath, opts);
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const meta = model.inputNames[0];
  const buf = fs.readFileSync(inputPath);
  const data = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const h = parseInt(process.env.M3VIT_H, 10), w = parseInt(process.env.M3VIT_W, 10);
  const input = new ort.Tensor('float32', data, [1, 3, h, w]);
  t0 = process.hrtime.bigint();
  let out = await model.run({[meta]: input});
  const firstMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const ms = [];
  for (let r = 0; r < reps; ++r) {
    t0 = process.hrtime.bigint();
    out = await model.run({[meta]: input});
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const y = out[model.outputNames[0]].data;
  fs.writeFileSync(outputPath, Buffer.from(y.buffer, y.byteOffset, y.byteLength));
  const sorted = [...ms].sort((a, b) => a - b);
  const version = require('onnxruntime-node/package.json').version;
  console.log(JSON.stringify({load_ms: loadMs, first_ms: firstMs, ms, median_ms: sorted[Math.floor(sorted.length / 2)],
                              threads: 2, dims: out[model.outputNames[0]].dims, version}));
}

main().catch((e) => {
  console.error('run_ort: ' + e.message);
  process.exit(2);
});
