// Experiment (preload with --require): the mesh's HTTP/2 peer connections
// advertise a larger SETTINGS_MAX_FRAME_SIZE (256 KiB instead of 16 KiB), so a
// 64 KiB body crosses as one DATA frame instead of four or more, without
// touching proxy/. Applies to http2.connect (outgoing side) and
// http2.createServer (incoming side).
const http2 = require("node:http2");
const MAX_FRAME = Number(process.env.BENCH_H2_MAX_FRAME || 262144);
const connect = http2.connect;
http2.connect = function (authority, options, listener) {
  if (typeof options === "object" && options !== null) {
    options = { ...options, settings: { ...(options.settings || {}), maxFrameSize: MAX_FRAME } };
  }
  return connect.call(this, authority, options, listener);
};
const createServer = http2.createServer;
http2.createServer = function (options, listener) {
  if (typeof options === "object" && options !== null) {
    options = { ...options, settings: { ...(options.settings || {}), maxFrameSize: MAX_FRAME } };
  }
  return createServer.call(this, options, listener);
};
