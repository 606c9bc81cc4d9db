// Experiment (preload with --require), without touching proxy/: V8's sampling
// heap profiler, driven by SIGUSR2. The first SIGUSR2 starts sampling; the
// second writes the allocation sites of sampled objects to
// $BENCH_HEAP_DIR/heap-<pid>.json and stops. With BENCH_HEAP_PROMOTED=1 the
// samples of objects a major GC collected are kept too: those are objects that
// survived young-generation GCs (promoted to old space) and then died, the
// ones that make scavenges slow and the old space grow.
// Summarise with experiments/heap-top.ts.
const inspector = require("node:inspector");
const fs = require("node:fs");
const path = require("node:path");
const dir = process.env.BENCH_HEAP_DIR || "/tmp";
const promoted = process.env.BENCH_HEAP_PROMOTED === "1";
const session = new inspector.Session();
session.connect();
let sampling = false;
process.on("SIGUSR2", () => {
  if (!sampling) {
    sampling = true;
    session.post("HeapProfiler.startSampling", { samplingInterval: 8192, includeObjectsCollectedByMajorGC: promoted });
    return;
  }
  session.post("HeapProfiler.getSamplingProfile", (err, res) => {
    if (!err) fs.writeFileSync(path.join(dir, `heap-${process.pid}.json`), JSON.stringify(res.profile));
    session.post("HeapProfiler.stopSampling");
    sampling = false;
  });
});
