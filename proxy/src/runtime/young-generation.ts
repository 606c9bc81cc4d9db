// Imported for its effect, first thing in main.ts: bounds V8's young
// generation from inside the process, since the image runs plain
// `node dist/main.js` and has no command line to put flags on.
//
// V8 sizes the young generation from the machine's memory, not the
// container's limit: on a 24 GiB node each semi-space grows to 64 MiB under
// load. For a proxy that is the wrong trade. Every request allocates a little
// and little of it lives long, so a large young generation mostly holds
// garbage; it costs RSS (128 MiB, plus the Buffers it keeps alive until the
// next scavenge) and makes each scavenge pause long. Too small is wrong too:
// at V8's initial 1 MiB per semi-space the in-flight requests' objects are
// promoted and GC took 18% of each proxy's CPU, against 9% at 4 MiB.
//
// Only --semi-space-growth-factor works when set at run time (the size flags
// are read once, when the heap is made), so growth is switched off while the
// modules load, switched on once the proxy runs, and switched off again each
// time the young generation reaches SEMI_SPACE_BYTES (checked after every GC).
// An operator's own young-generation flag (NODE_OPTIONS, node's command line)
// is left to decide.
import { PerformanceObserver } from "node:perf_hooks";
import { getHeapSpaceStatistics, setFlagsFromString } from "node:v8";

const SEMI_SPACE_BYTES = 4 * 1024 * 1024;
const OPERATOR_FLAG = /--(max-semi-space-size|min-semi-space-size|semi-space-growth-factor|max-young-generation-size)\b/;

const managed = !OPERATOR_FLAG.test(`${process.execArgv.join(" ")} ${process.env.NODE_OPTIONS ?? ""}`);
let growing = true;

function setGrowth(grow: boolean): void {
  if (grow === growing) return;
  growing = grow;
  setFlagsFromString(`--semi-space-growth-factor=${grow ? 2 : 1}`);
}

/** The new space is two semi-spaces; V8 reports their total. */
function youngGenerationFull(): boolean {
  for (const s of getHeapSpaceStatistics()) {
    if (s.space_name === "new_space") return s.space_size >= 2 * SEMI_SPACE_BYTES;
  }
  return true;
}

if (managed) setGrowth(false);

/** Called once the proxy is up: from now on the young generation may grow, to SEMI_SPACE_BYTES. */
export function manageYoungGeneration(): void {
  if (!managed) return;
  setGrowth(!youngGenerationFull());
  const observer = new PerformanceObserver(() => setGrowth(!youngGenerationFull()));
  observer.observe({ entryTypes: ["gc"] });
}
