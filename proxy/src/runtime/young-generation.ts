// Imported for its effect, first thing in main.ts: bounds V8's young
// generation from inside the process, since the image runs plain
// `node dist/main.js` and has no command line to put flags on.
//
// V8 sizes the young generation from the machine's memory, not the
// container's limit: on a 24 GiB node each semi-space grows to 64 MiB under
// load. For a proxy that is the wrong trade. Every request allocates a little
// and little of it lives long, so a large young generation mostly holds
// garbage; it costs RSS (128 MiB, plus the Buffers it keeps alive until the
// next scavenge) and makes each scavenge pause long (10-30 ms, which was the
// mesh's p99 at 500 req/s). With growth turned off the young generation stays
// at V8's initial 1 MiB per semi-space: scavenges are frequent and short.
//
// --semi-space-growth-factor is read each time the young generation would
// grow, so unlike --max-semi-space-size it works when set at run time; it has
// to be set before the heap first grows, i.e. before the other modules load.
// An operator's own young-generation flag (NODE_OPTIONS, node's command line)
// is left to decide.
import { setFlagsFromString } from "node:v8";

const OPERATOR_FLAG = /--(max-semi-space-size|semi-space-growth-factor|max-young-generation-size)\b/;

if (!OPERATOR_FLAG.test(`${process.execArgv.join(" ")} ${process.env.NODE_OPTIONS ?? ""}`)) {
  setFlagsFromString("--semi-space-growth-factor=1");
}
