// Generated sections of the docs: text between a begin and an end marker that a
// program (the config generator, the benchmark) rewrites and a test compares.
import { readFileSync, writeFileSync } from "node:fs";

export interface Markers {
  readonly begin: string;
  readonly end: string;
}

/** `doc` with the text between the markers replaced by `content`; throws naming the file if a marker is missing. */
export function withSection(doc: string, markers: Markers, content: string, docName: string): string {
  const start = doc.indexOf(markers.begin);
  const stop = doc.indexOf(markers.end);
  if (start < 0 || stop < start) throw new Error(`${docName} lacks the markers ${markers.begin} ... ${markers.end}`);
  return `${doc.slice(0, start + markers.begin.length)}\n${content}\n${doc.slice(stop)}`;
}

/**
 * Brings the file at `path` up to date with `update`. With `check`, writes
 * nothing and returns false when the file is out of date.
 */
export function updateFile(path: string, update: (text: string) => string, check: boolean): boolean {
  const text = readFileSync(path, "utf8");
  const updated = update(text);
  if (updated === text) return true;
  if (check) return false;
  writeFileSync(path, updated);
  return true;
}
