#!/usr/bin/env node
// The `zt-mesh` command: the CLI is TypeScript, run through tsx.
require("tsx/cjs");
require("./zt-mesh.ts");
